"""mailpost.utils.DNS_NAME (lazy, cached, thread-safe FQDN) and make_msgid."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

import mailpost.utils
from helpers import make_message
from mailpost import make_msgid
from mailpost.message import serialize
from mailpost.utils import DNS_NAME, CachedDnsName

MSGID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")


class CountingFqdn:
    """A stand-in for socket.getfqdn that counts calls and can be slow."""

    def __init__(self, name: str = "host.example.net", delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, name: str = "") -> str:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return self.name


@pytest.fixture
def fqdn(monkeypatch: pytest.MonkeyPatch) -> CountingFqdn:
    counter = CountingFqdn()
    monkeypatch.setattr(socket, "getfqdn", counter)
    monkeypatch.setattr(DNS_NAME, "_fqdn", None)
    return counter


# ---------------------------------------------------------------- DNS_NAME


def test_dns_name_is_a_cached_dns_name() -> None:
    assert isinstance(mailpost.utils.DNS_NAME, CachedDnsName)


def test_creating_cached_dns_name_does_not_resolve(fqdn: CountingFqdn) -> None:
    CachedDnsName()
    assert fqdn.calls == 0


def test_cached_dns_name_resolves_once_on_first_use(fqdn: CountingFqdn) -> None:
    name = CachedDnsName()
    assert str(name) == "host.example.net"
    assert name.get_fqdn() == "host.example.net"
    assert str(name) == "host.example.net"
    assert fqdn.calls == 1


def test_non_ascii_fqdn_is_idna_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", CountingFqdn("bücher.example"))
    assert str(CachedDnsName()) == "xn--bcher-kva.example"


def test_concurrent_first_use_resolves_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingFqdn(delay=0.05)
    monkeypatch.setattr(socket, "getfqdn", counter)
    name = CachedDnsName()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(str(name))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert results == ["host.example.net"] * 16
    assert counter.calls == 1


def test_importing_mailpost_does_not_resolve_the_host_name() -> None:
    code = (
        "import socket\n"
        "calls = []\n"
        "socket.getfqdn = lambda *a: calls.append(a) or 'x.example'\n"
        "import mailpost, mailpost.message, mailpost.utils\n"
        "print(len(calls))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_many_messages_resolve_the_host_name_at_most_once(fqdn: CountingFqdn) -> None:
    for _ in range(50):
        serialize(make_message())
        make_message().message()
    assert fqdn.calls == 1


def test_message_id_domain_comes_from_dns_name(fqdn: CountingFqdn) -> None:
    data = serialize(make_message())
    assert re.search(rb"\r\nMessage-ID: <[^>\s]+@host\.example\.net>\r\n", data, re.IGNORECASE)


def test_slow_resolver_is_paid_once_not_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingFqdn(delay=0.25)
    monkeypatch.setattr(socket, "getfqdn", counter)
    monkeypatch.setattr(DNS_NAME, "_fqdn", None)
    start = time.perf_counter()
    for _ in range(20):
        serialize(make_message())
    elapsed = time.perf_counter() - start
    assert counter.calls <= 1
    assert elapsed < 0.25 * 4, f"20 messages took {elapsed:.2f}s"


def test_given_message_id_does_not_need_the_host_name(fqdn: CountingFqdn) -> None:
    m = make_message()
    m.extra_headers["Message-ID"] = "<given@example.com>"
    serialize(m)
    assert fqdn.calls == 0


# ---------------------------------------------------------------- make_msgid


def test_make_msgid_has_angle_brackets_and_one_at(fqdn: CountingFqdn) -> None:
    mid = make_msgid()
    assert MSGID.fullmatch(mid), mid


def test_make_msgid_uses_given_domain() -> None:
    mid = make_msgid(domain="example.com")
    assert mid.endswith("@example.com>")
    assert MSGID.fullmatch(mid), mid


def test_make_msgid_default_domain_is_the_fqdn(fqdn: CountingFqdn) -> None:
    assert make_msgid().endswith("@host.example.net>")


def test_make_msgid_includes_idstring() -> None:
    mid = make_msgid("order42", domain="example.com")
    assert "order42" in mid.split("@")[0]
    assert MSGID.fullmatch(mid), mid


def test_make_msgid_is_unique() -> None:
    ids = {make_msgid(domain="example.com") for _ in range(2000)}
    assert len(ids) == 2000


def test_make_msgid_is_unique_across_threads() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        local = [make_msgid(domain="example.com") for _ in range(300)]
        with lock:
            seen.extend(local)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(seen) == 2400
    assert len(set(seen)) == 2400


def test_make_msgid_is_ascii_without_whitespace() -> None:
    mid = make_msgid(domain="example.com")
    assert mid.isascii()
    assert not any(c.isspace() for c in mid)
