"""The brevo backend at its spec-shaped dotted path; the code is in :mod:`mailpost.backends.http.brevo`."""

from __future__ import annotations

from mailpost.backends.http.brevo import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
