"""tests/djangoproject holds a Django project and its suites; they need Django and its settings.

They run only when pytest is started with this directory's pytest.ini (scripts/test-django
does); the repository's main suite, which recurses into tests/, collects nothing here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.rootpath.resolve() != HERE:
        return True
    return None
