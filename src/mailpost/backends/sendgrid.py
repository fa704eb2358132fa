"""``mailpost.backends.sendgrid.EmailBackend``: see :mod:`mailpost.backends.http.sendgrid`."""

from __future__ import annotations

from mailpost.backends.http.sendgrid import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
