"""``mailpost.backends.brevo.EmailBackend``: see :mod:`mailpost.backends.http.brevo`."""

from __future__ import annotations

from mailpost.backends.http.brevo import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
