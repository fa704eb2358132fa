"""Django 6.1's ``django.core.mail`` and mailpost, scenario by scenario (see diff_harness.py).

Each scenario in ``diff_scenarios_*.py`` is one test here. The scenarios run in one
subprocess with Django configured, so the rest of the suite never sees Django's settings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diff_harness import Observation, differences, load_scenarios

django = pytest.importorskip("django")

HERE = Path(__file__).parent
COMPATIBILITY = HERE.parent / "docs" / "compatibility.md"
SCENARIOS = load_scenarios()

pytestmark = pytest.mark.skipif(
    django.VERSION[:2] != (6, 1),
    reason="the reference is Django 6.1 (Python >= 3.12; the test extra installs it there)",
)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILPOST_", "DJANGO_"))}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(HERE.parent / "src"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, str(HERE / "diff_harness.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _observations(report: dict[str, Any], name: str) -> tuple[Observation, Observation]:
    assert name in report, f"scenario {name} did not run"
    return Observation(**report[name]["django"]), Observation(**report[name]["mailpost"])


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if not s.deliberate))
def test_behaves_like_django(report: dict[str, Any], name: str) -> None:
    dj, mp = _observations(report, name)
    found = differences(dj, mp)
    assert not found, f"{name}: mailpost differs from Django 6.1:\n" + "\n".join(found)


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if s.deliberate))
def test_deliberate_difference_is_real_and_documented(report: dict[str, Any], name: str) -> None:
    dj, mp = _observations(report, name)
    assert not dj.error, dj.error
    assert not mp.error, mp.error
    assert differences(dj, mp), f"{name} is listed as a deliberate difference but behaves alike"
    page = COMPATIBILITY.read_text(encoding="utf-8")
    assert re.search(rf"`{re.escape(name)}`", page), f"docs/compatibility.md does not list {name}"


def test_every_scenario_module_is_loaded() -> None:
    modules = {s.module for s in SCENARIOS.values()}
    assert modules, "no differential scenarios were found"
