"""``mailpost.backends.sequenzy.EmailBackend``: see :mod:`mailpost.backends.http.sequenzy`."""

from __future__ import annotations

from mailpost.backends.http.sequenzy import EmailBackend as EmailBackend

__all__ = ["EmailBackend"]
