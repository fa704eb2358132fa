"""The sequenzy backend at its spec-shaped dotted path; the code is in :mod:`mailpost.backends.http.sequenzy`."""

from __future__ import annotations

from mailpost.backends.http.sequenzy import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
