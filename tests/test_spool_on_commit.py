"""The spool's ``on_commit`` option: inside a Django transaction, enqueue when it commits.

Django runs in a subprocess with its own settings module (SQLite in memory), so this
pytest process never configures Django.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mailpost
from mailpost import EmailMessage
from mailpost.spool import Spool

SETTINGS = """
SECRET_KEY = "on-commit-test"
INSTALLED_APPS = {apps!r}
USE_TZ = True
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
MAILERS = {{
    "mem": {{"BACKEND": "mailpost.backends.locmem.EmailBackend"}},
    "spool": {{
        "BACKEND": "mailpost.backends.spool.EmailBackend",
        "OPTIONS": {{"mailer": "mem", "path": {path!r}, "on_commit": True}},
    }},
}}
"""

SCRIPT = """
import json

import django

django.setup()
from django.db import transaction

import mailpost
from mailpost import EmailMessage
from mailpost.spool import Spool

spool = Spool.from_mailer("spool")
backend = mailpost.mailers["spool"]


def total():
    return spool.stats()["total"]


def message(subject):
    return EmailMessage(subject, "body", "shop@example.com", ["ann@example.org"])


out = {}
outside = message("outside")
backend.send_messages([outside])
out["outside"] = [total(), list(outside.delivery.response)]

inside = message("inside")
with transaction.atomic():
    backend.send_messages([inside])
    with transaction.atomic():
        nested = message("nested")
        backend.send_messages([nested])
    out["before_commit"] = [total(), list(inside.delivery.response), hasattr(inside, "spool_id")]
out["after_commit"] = [total(), list(inside.delivery.response), inside.spool_id]
out["stored_id"] = spool.get(inside.spool_id).message_id == inside.delivery.message_id
out["nested"] = nested.spool_id

try:
    with transaction.atomic():
        backend.send_messages([message("rolled back")])
        raise RuntimeError("rollback")
except RuntimeError:
    pass
out["after_rollback"] = total()
print(json.dumps(out))
"""


def _run_django(tmp_path: Path, script: str, apps: list[str]) -> subprocess.CompletedProcess[bytes]:
    """``script`` in a Django process whose settings have ``apps`` as INSTALLED_APPS."""
    try:
        import django  # noqa: F401
    except ImportError:
        pytest.fail("the on_commit test needs Django: pip install django (part of the test extra)")
    (tmp_path / "oncommit_settings.py").write_text(
        SETTINGS.format(path=str(tmp_path / "spool.sqlite3"), apps=apps)
    )
    path = tmp_path / "run.py"
    path.write_text(textwrap.dedent(script))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "oncommit_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, env=env, timeout=60, check=False
    )


def test_on_commit_defers_enqueue_to_commit_and_drops_it_on_rollback(tmp_path: Path) -> None:
    done = _run_django(tmp_path, SCRIPT, ["mailpost.integrations.django"])
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    assert out["outside"] == [1, [250, "queued as 1"]]  # no transaction: stored at once
    assert out["before_commit"] == [1, [250, "queued on commit"], False]
    assert out["after_commit"] == [3, [250, "queued as 2"], 2]
    assert out["stored_id"] is True  # the Message-ID fixed at send time is the one stored
    assert out["nested"] == 3
    assert out["after_rollback"] == 3  # mail for a rolled-back transaction is never queued


NO_APP_SCRIPT = """
import django

django.setup()
from django.db import transaction

import mailpost
from mailpost import EmailMessage, InvalidMailer

with transaction.atomic():
    try:
        mailpost.mailers["spool"].send_messages([EmailMessage("s", "b", "f@x.test", ["t@x.test"])])
    except InvalidMailer as exc:
        print(exc)
"""


def test_on_commit_in_django_without_mailpost_app_is_an_error_naming_the_fix(
    tmp_path: Path,
) -> None:
    done = _run_django(tmp_path, NO_APP_SCRIPT, [])
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    assert text.startswith("MAILERS['spool']: OPTIONS 'on_commit' needs mailpost's Django app")
    assert "'mailpost.integrations.django' to INSTALLED_APPS" in text
    assert not (tmp_path / "spool.sqlite3").exists()  # nothing was stored before the commit


def test_on_commit_outside_django_stores_at_once(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "mem": {"BACKEND": "mailpost.backends.locmem.EmailBackend"},
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {
                    "mailer": "mem",
                    "path": str(tmp_path / "s.sqlite3"),
                    "on_commit": True,
                },
            },
        }
    )
    message = EmailMessage("hi", "body", "shop@example.com", ["ann@example.org"])
    assert mailpost.mailers["spool"].send_messages([message]) == 1
    assert Spool.from_mailer("spool").get(message.spool_id) is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"on_commit": ""}, "OPTIONS 'on_commit' must be True, False or a Django database alias"),
        ({"on_commit": 1}, "OPTIONS 'on_commit' must be True, False"),
        ({"dispatch": "rq"}, "or None, not 'rq'"),
        ({"dispatch": 1}, "OPTIONS 'dispatch' must be one of"),
        ({"in_process_worker": True, "dispatch": "inline"}, "'in_process_worker' and 'dispatch'"),
    ],
)
def test_bad_dispatch_options_are_named(
    tmp_path: Path, options: dict[str, object], problem: str
) -> None:
    mailpost.configure(
        MAILERS={
            "spool": {
                "BACKEND": "mailpost.backends.spool.EmailBackend",
                "OPTIONS": {"mailer": "mem", "path": str(tmp_path / "s.sqlite3"), **options},
            }
        }
    )
    with pytest.raises(mailpost.InvalidMailer) as info:
        mailpost.mailers["spool"]
    assert "MAILERS['spool']" in str(info.value)
    assert problem in str(info.value)
