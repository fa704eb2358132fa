"""``{% load mailpost %}`` for projects with ``mailpost.integrations.django`` installed."""

from __future__ import annotations

from mailpost.templates.django_tags import register

__all__ = ["register"]
