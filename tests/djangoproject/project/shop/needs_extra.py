"""A backend module whose optional dependency is missing, as a real extra would report it."""

from __future__ import annotations

from mailpost.exceptions import MissingDependency

raise MissingDependency('shop.needs_extra needs the "acme-mail" package: pip install acme-mail')
