"""``mailpost.backends.resend.EmailBackend``: see :mod:`mailpost.backends.http.resend`."""

from __future__ import annotations

from mailpost.backends.http.resend import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
