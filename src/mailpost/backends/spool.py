"""The spool backend at the spec-style path ``mailpost.backends.spool.EmailBackend``.

It lives with the spool (:mod:`mailpost.spool.backend`); this module only re-exports it.
"""

from __future__ import annotations

from mailpost.spool.backend import DEFAULT_PATH, EmailBackend, SpoolBackend

__all__ = ["DEFAULT_PATH", "EmailBackend", "SpoolBackend"]
