"""mailpost.templates with Django's template engine, in a subprocess with its own settings.

Django is configured in a child process (as in test_spool_on_commit.py) so this pytest
process never configures Django.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)

FILES = {
    "base.html": """{% block subject %}Base subject{% endblock %}
{% block html %}<html><head><style>.box { padding: 8px }</style></head>
<body><div class="box">{% block content %}base content{% endblock %}</div>
</body></html>{% endblock %}
""",
    "welcome.html": """{% extends "base.html" %}{% load i18n mailpost %}
{% block subject %}{% translate "Monday" %}:
 welcome {{ name }}{% endblock %}
{% block content %}<p>Hello {{ name }}, <a href="https://example.com/go">start here</a>.</p>
<img src="{% inline_image "logo.png" %}" alt="Logo">{{ block.super }}{% endblock %}
""",
    "strict.txt": "Hi {{ nmae }}",
    "esc.subject.txt": "{{ a }} & {{ b }}",
    "esc.html": "<p>{{ b }}</p>",
    "esc.txt": "{{ b }}",
    "strict.subject.txt": "s",
    "logo.png": None,
    "jinja/hello.html": "{% block subject %}Jinja {{ who }}{% endblock %}"
    "{% block html %}<p>Hi {{ who }}</p>{% endblock %}",
}

SCRIPT = """
import json, sys
import django
from django.conf import settings

settings.configure(
    USE_I18N=True,
    LANGUAGE_CODE="en",
    INSTALLED_APPS=["mailpost.integrations.django"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [sys.argv[1]]},
               {"BACKEND": "django.template.backends.jinja2.Jinja2", "NAME": "jinja",
                "DIRS": [sys.argv[1] + "/jinja"]}],
    MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}},
)
django.setup()
import email, email.policy
import mailpost
from mailpost.message import serialize
from mailpost.templates import (DjangoEngine, TemplateNotFound, UndefinedVariable,
                                render_message, send_templated_mail)

out = {}
msg = render_message("welcome.html", {"name": "Ann"}, to=["ann@example.org"],
                     from_email="shop@example.com")
out["subject"] = msg.subject
out["body"] = msg.body
out["html"] = msg.alternatives[0][0]
parsed = email.message_from_bytes(serialize(msg), policy=email.policy.default)
related = parsed.get_payload()[1]
out["related"] = [p.get_content_type() for p in related.get_payload()]
out["cid"] = related.get_payload()[1]["Content-ID"]
out["fr_subject"] = render_message("welcome.html", {"name": "Ann"}, to=["a@example.org"],
                                   language="fr").subject
try:
    render_message("missing", to=["a@example.org"])
except TemplateNotFound as exc:
    out["missing"] = str(exc)
esc = render_message("esc", {"a": "Tom", "b": "<Jerry>"}, to=["a@example.org"], css=False)
out["esc"] = [esc.subject, esc.body, esc.alternatives[0][0]]
out["lax"] = render_message("strict", to=["a@example.org"]).body
try:
    render_message("strict", to=["a@example.org"], engine=DjangoEngine(strict=True))
except UndefinedVariable as exc:
    out["strict"] = str(exc)
out["lax_after_strict"] = render_message("strict", to=["a@example.org"]).body
out["sent"] = send_templated_mail("welcome.html", {"name": "Bob"}, to=["bob@example.org"])
out["outbox"] = [m.subject for m in mailpost.outbox]
jmsg = render_message("hello.html", {"who": "Ann"}, to=["a@example.org"],
                      engine=DjangoEngine(using="jinja"))
out["jinja"] = [jmsg.subject, jmsg.body]
from django.template import Context, Engine
noapp = Engine(libraries={"mailpost": "mailpost.templates.django_tags"})
try:
    noapp.from_string("{% load mailpost %}{% inline_image 'x.png' %}").render(Context())
except Exception as exc:
    out["library"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("django_templates")
    for name, text in FILES.items():
        (root / name).parent.mkdir(exist_ok=True)
        if text is None:
            (root / name).write_bytes(PNG)
        else:
            (root / name).write_text(textwrap.dedent(text))
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)],
        capture_output=True, text=True, timeout=60, env=env, cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["root"] = str(root)
    return data


def test_subject_block_overrides_base_and_is_one_line(result: dict[str, Any]) -> None:
    assert result["subject"] == "Monday: welcome Ann"


def test_html_block_uses_child_content_block_super_and_inlined_css(result: dict[str, Any]) -> None:
    html = result["html"]
    assert '<div class="box" style="padding: 8px;">' in html
    assert "Hello Ann" in html
    assert "base content" in html  # {{ block.super }}
    assert "<style>" not in html


def test_generated_text_keeps_the_link(result: dict[str, Any]) -> None:
    assert "Hello Ann, start here (https://example.com/go)." in result["body"]


def test_inline_image_tag_makes_a_related_part(result: dict[str, Any]) -> None:
    assert result["related"] == ["text/html", "image/png"]
    assert f'src="cid:{result["cid"].strip("<>")}"' in result["html"]


def test_language_activates_a_translation(result: dict[str, Any]) -> None:
    assert result["fr_subject"] == "lundi: welcome Ann"


def test_missing_template_lists_searched_paths(result: dict[str, Any]) -> None:
    assert "missing.html" in result["missing"]
    assert os.path.join(result["root"], "missing.txt") in result["missing"]


def test_strict_mode_raises_and_lax_mode_is_unchanged(result: dict[str, Any]) -> None:
    assert result["lax"] == "Hi "
    assert "nmae" in result["strict"]
    assert result["lax_after_strict"] == "Hi "


def test_send_templated_mail_sends_through_the_mailer(result: dict[str, Any]) -> None:
    assert result["sent"] == 1
    assert result["outbox"] == ["Monday: welcome Bob"]


def test_default_engine_without_django_settings_says_what_to_do(tmp_path: Path) -> None:
    script = (
        "from mailpost.templates import TemplateError, render_message\n"
        "try:\n"
        "    render_message('welcome', to=['a@example.org'])\n"
        "except TemplateError as exc:\n"
        "    print(exc)\n"
    )
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Django is not configured" in proc.stdout
    assert "JinjaEngine" in proc.stdout


def test_djangos_jinja2_backend_renders_blocks(result: dict[str, Any]) -> None:
    assert result["jinja"] == ["Jinja Ann", "Hi Ann\n"]


def test_tag_library_loads_without_the_app_and_needs_render_message(
    result: dict[str, Any],
) -> None:
    assert result["library"] == (
        "TemplateError: inline_image() is only available while render_message() renders"
    )


def test_subject_and_text_files_are_not_html_escaped(result: dict[str, Any]) -> None:
    assert result["esc"] == ["Tom & <Jerry>", "<Jerry>", "<p>&lt;Jerry&gt;</p>"]
