"""What only the PostgreSQL store has to get right: processes that fork, and processes that
die inside a transaction, on a real server (tests/pg_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mailpost.spool.pgstore import PostgresStore
from mailpost.spool.record import NewMessage
from pg_server import PostgresServer


def _new(n: int) -> NewMessage:
    return NewMessage(
        data=f"Subject: msg {n}\r\n\r\nbody\r\n".encode(),
        sender="s@x.test",
        recipients=["a@x.test"],
        mailer="smtp",
        message_id=f"<m{n}@x.test>",
    )


def test_a_forked_child_never_ends_its_parents_session(postgres_server: PostgresServer) -> None:
    store = PostgresStore(postgres_server.database())
    try:
        store.enqueue([_new(1)], now=1.0)
        pid = os.fork()
        if pid == 0:  # the child drops its copy of the store, as an exiting process does
            try:
                del store
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.enqueue([_new(2)], now=2.0) == [2]  # the parent's session is intact
        assert [r.id for r in store.lease("w", now=3.0, lease_seconds=60, limit=5)] == [1, 2]
    finally:
        store.close()


def test_a_process_killed_inside_a_transaction_releases_the_lock_at_once(
    postgres_server: PostgresServer,
) -> None:
    """Its forked child lives on, but no longer holds the dead process's socket: the server
    sees the connection close, ends the transaction and frees the write lock."""
    url = postgres_server.database()
    store = PostgresStore(url, busy_timeout=20)
    code = (
        "import os, sys, time\n"
        "from mailpost.spool.pgstore import PostgresStore\n"
        "s = PostgresStore(sys.argv[1])\n"
        "if os.fork() == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "with s._write():\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"locked"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        started = time.monotonic()
        assert store.enqueue([_new(1)], now=1.0) == [1]
        assert time.monotonic() - started < 10  # not the 20 s lock timeout
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # the child, still sleeping
        if holder.stdout is not None:
            holder.stdout.close()
        store.close()
