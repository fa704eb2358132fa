"""Spool locations: a file path (SQLite) or a ``postgresql://`` URL, and how to show one."""

from __future__ import annotations

import re

__all__ = ["is_postgres_url", "mask_password"]


def is_postgres_url(location: str) -> bool:
    """Whether a spool ``path`` names a PostgreSQL database rather than a SQLite file."""
    return location.startswith(("postgresql://", "postgres://"))


def mask_password(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", url)
