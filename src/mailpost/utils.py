"""Small shared utilities: the host's DNS name for Message-IDs."""

from __future__ import annotations

import socket
import threading

__all__ = ["DNS_NAME", "CachedDnsName"]


class CachedDnsName:
    """This host's fully qualified name, looked up once on first use and then cached.

    ``socket.getfqdn()`` can take seconds on a badly configured resolver; paying that on
    every message would be unacceptable, and paying it at import would slow every program
    that imports mailpost. ``str(DNS_NAME)`` pays it once, on the first Message-ID.
    Non-ASCII host names are IDNA-encoded so they are valid in a Message-ID.
    """

    def __init__(self) -> None:
        self._fqdn: str | None = None
        self._lock = threading.Lock()

    def get_fqdn(self) -> str:
        fqdn = self._fqdn
        if fqdn is None:
            with self._lock:
                if self._fqdn is None:
                    self._fqdn = _ascii_host(socket.getfqdn())
                fqdn = self._fqdn
        return fqdn

    def __str__(self) -> str:
        return self.get_fqdn()


def _ascii_host(name: str) -> str:
    name = name.strip().rstrip(".") or "localhost"
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


DNS_NAME = CachedDnsName()
