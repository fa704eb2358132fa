"""``mailpost.backends.postmark.EmailBackend``: see :mod:`mailpost.backends.http.postmark`."""

from __future__ import annotations

from mailpost.backends.http.postmark import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
