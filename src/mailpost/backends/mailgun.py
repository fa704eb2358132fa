"""``mailpost.backends.mailgun.EmailBackend``: see :mod:`mailpost.backends.http.mailgun`."""

from __future__ import annotations

from mailpost.backends.http.mailgun import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
