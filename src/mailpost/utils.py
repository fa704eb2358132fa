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

    As with Django's, tests reset the cache with ``delattr(DNS_NAME, "_fqdn")``: the class
    attribute below then shows through and the next use looks the name up again.
    """

    _fqdn: str | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def get_fqdn(self) -> str:
        fqdn = self._fqdn
        if fqdn is None:
            with self._lock:
                fqdn = self._fqdn
                if fqdn is None:
                    fqdn = self._fqdn = _ascii_host(socket.getfqdn())
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
