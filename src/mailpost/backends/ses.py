"""``mailpost.backends.ses.EmailBackend``: see :mod:`mailpost.backends.http.ses`."""

from __future__ import annotations

from mailpost.backends.http.ses import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
