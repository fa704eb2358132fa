"""A private Postfix instance for interop tests, on loopback only.

:class:`PrivatePostfix` writes its own ``main.cf`` and ``master.cf`` into a fresh
directory, with its own queue and data directories there, and runs ``postfix -c <dir>
start``: the system instance and /etc/postfix are never used or changed. It listens on
127.0.0.1 on a free port, delivers nothing locally, looks nothing up in DNS, and relays
every message it accepts to ``relay`` (an address on loopback, in brackets, so no MX
lookup). ``smtputf8`` sets ``smtputf8_enable``. Start and stop are bounded by timeouts;
:meth:`stop` also kills the instance's processes if ``postfix stop`` leaves any.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

__all__ = ["POSTFIX", "PostfixError", "PrivatePostfix", "postfix_missing"]

POSTFIX = "/usr/sbin/postfix"
HOST = "127.0.0.1"
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}

#: The services a relay-only Postfix needs (no pickup, local or chroot).
_MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
showq     unix  n - n - - showq
postlog   unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.mailpost.test
mydomain = mailpost.test
myorigin = $myhostname
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [{host}]:{relay_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtputf8_enable = {smtputf8}
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s
smtp_data_done_timeout = 10s
smtpd_timeout = 10s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 0
maximal_queue_lifetime = 1m
biff = no
smtpd_banner = $myhostname ESMTP
"""


def postfix_missing() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    if not os.path.exists(POSTFIX):
        return f"Postfix is not installed ({POSTFIX} missing; scripts/services installs it)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix start)"
    return None


class PostfixError(RuntimeError):
    """The private instance did not start, or did not stop."""


class PrivatePostfix:
    """One throwaway Postfix relaying to ``relay`` (host, port); see the module text."""

    def __init__(self, relay: tuple[str, int], *, smtputf8: bool = True) -> None:
        self.relay = relay
        self.smtputf8 = smtputf8
        self.host = HOST
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="mailpost-postfix-"))
        self.root.chmod(0o755)  # the postfix user reads its queue below it
        self.config = self.root / "etc"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None

    def _postfix(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_ENV,
        )

    def start(self, timeout: float = 30.0) -> PrivatePostfix:
        relay_host, relay_port = self.relay
        assert relay_host == HOST, "the relay must be on loopback"
        self.port = _free_port()
        self.config.mkdir()
        for name in ("queue", "data"):
            (self.root / name).mkdir()
        (self.root / "data").chmod(0o700)
        shutil.chown(self.root / "data", "postfix", "postfix")
        values = {
            "root": self.root,
            "host": HOST,
            "port": self.port,
            "relay_port": relay_port,
            "smtputf8": "yes" if self.smtputf8 else "no",
        }
        (self.config / "main.cf").write_text(_MAIN_CF.format(**values))
        (self.config / "master.cf").write_text(_MASTER_CF.format(**values))
        # In the foreground, as a child of this process in a session of its own: it is
        # reaped here, and whatever is left of it can be killed as one process group.
        self._stderr = open(self.root / "stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [POSTFIX, "-c", str(self.config), "start-fg"],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            env=_ENV,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((HOST, self.port), 1.0) as sock:
                    sock.settimeout(5.0)
                    if sock.recv(512).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = self.log()
                self.stop()
                raise PostfixError(f"postfix did not answer on {self.port}\n{why}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """``postfix stop``, then kill what is left of this instance; remove its files."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                self._postfix("stop", timeout=timeout)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):  # still running: its own group
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        for leftover in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        if self._stderr is not None:
            self._stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def processes(self) -> list[int]:
        """Processes of this instance still alive: those whose environment names its
        config directory (master passes ``MAIL_CONFIG`` to its children)."""
        mark = f"MAIL_CONFIG={self.config}".encode()
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if mark in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def log(self) -> str:
        """The instance's log and its start-up output (for failure messages)."""
        parts = []
        for name in ("stderr", "maillog"):
            with contextlib.suppress(OSError):
                parts.append((self.root / name).read_text(errors="replace"))
        return "\n".join(parts) or "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port
