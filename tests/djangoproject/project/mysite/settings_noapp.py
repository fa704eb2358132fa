"""The MAILERS project without mailpost's Django app installed: test runs still capture."""

from __future__ import annotations

from mysite.settings import *  # noqa: F403
from mysite.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "mailpost.integrations.django"]
