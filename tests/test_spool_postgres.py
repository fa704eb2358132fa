"""What only the PostgreSQL store has to get right: processes that fork, and processes that
die inside a transaction, on a real server (tests/pg_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import closing

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


def test_a_lease_never_waits_for_another_workers_lease_and_takes_other_records(
    postgres_server: PostgresServer,
) -> None:
    """While one worker's lease transaction is still open (its rows locked, not committed),
    a second worker leases at once (SKIP LOCKED), and only records the first did not take."""
    url = postgres_server.database()
    first = PostgresStore(url)
    second = PostgresStore(url, busy_timeout=5)  # a blocked lease would fail after 5 s
    try:
        first.enqueue([_new(i) for i in range(10)], now=1.0)
        with first._write(exclusive=False) as cur:
            mine = first._lease_in(cur, "first", 2.0, 60.0, 4, "", [])
            started = time.monotonic()
            theirs = second.lease("second", now=2.0, lease_seconds=60, limit=10)
            waited = time.monotonic() - started
        assert waited < 2.0
        assert [r.id for r in mine] == [1, 2, 3, 4]
        assert [r.id for r in theirs] == [5, 6, 7, 8, 9, 10]
        owners = {r.id: r.lease_owner for r in first.list(states=["leased"], limit=20)}
        assert owners == {i: "first" if i <= 4 else "second" for i in range(1, 11)}
    finally:
        first.close()
        second.close()


def test_two_workers_leasing_and_settling_in_parallel_deliver_each_record_once(
    postgres_server: PostgresServer,
) -> None:
    """Two store connections lease, and settle in the same transaction as their next
    lease, concurrently until the spool is empty: no record is leased by both, none is
    left behind, each is settled exactly once."""
    import threading

    from mailpost.spool.base import LeaseRequest
    from mailpost.spool.record import Outcome, RecipientResult

    url = postgres_server.database()
    with closing(PostgresStore(url)) as seed:
        seed.enqueue([_new(i) for i in range(600)], now=1.0)
    taken: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=10)

    def work(name: str) -> None:
        store = PostgresStore(url, busy_timeout=10)
        mine: list[int] = []
        try:
            start.wait()
            held = store.lease(name, now=2.0, lease_seconds=600, limit=7)
            for _ in range(300):  # bounded: 600 records in batches of 7 need far fewer
                if not held:
                    break
                mine += [r.id for r in held]
                outcomes = [
                    (r, Outcome([RecipientResult("a@x.test", "delivered", 250)], 2.0, 3.0, 0.0))
                    for r in held
                ]
                request = LeaseRequest(owner=name, now=3.0, lease_seconds=600, limit=7)
                settled, held = store.settle(outcomes, worker=name, lease=request)
                assert [s and s[0] for s in settled] == ["sent"] * len(outcomes)
        except BaseException as exc:
            errors.append(exc)
        finally:
            taken[name] = mine
            store.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert taken["w0"]  # both did work
    assert taken["w1"]
    assert sorted(taken["w0"] + taken["w1"]) == list(range(1, 601))
    with closing(PostgresStore(url)) as check:
        assert check.stats(now=4.0)["states"]["sent"] == 600
        assert [len(check.history(i)) for i in (1, 300, 600)] == [1, 1, 1]
