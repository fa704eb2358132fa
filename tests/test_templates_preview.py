"""Issue 15 end to end: templated mail sent through a ``capture://`` mailer shows up in the
preview app with its CSS inlined and a text part generated from the HTML."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import mailpost
from mailpost.preview import CaptureSource, CaptureStore, PreviewApp, PreviewServer
from mailpost.templates import JinjaEngine, send_templated_mail

TEMPLATE = """\
{% block subject %}Welcome, {{ name }}{% endblock %}
{% block html %}<html><head><style>p.lead { color: #123456; }</style></head>
<body><p class="lead">Hello {{ name }}, <a href="https://example.com/start">get started</a>.</p>
<ul><li>First step</li><li>Second step</li></ul></body></html>{% endblock %}
"""


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_templated_mail_sent_to_capture_appears_in_the_preview(tmp_path: Path) -> None:
    (tmp_path / "welcome.html").write_text(TEMPLATE)
    store_path = tmp_path / "capture.sqlite3"
    mailpost.configure(MAILERS={"default": f"capture://{store_path}"})

    sent = send_templated_mail(
        "welcome.html",
        {"name": "Ann"},
        to=["ann@example.com"],
        from_email="app@example.com",
        engine=JinjaEngine(str(tmp_path)),
    )
    assert sent == 1

    with PreviewServer(PreviewApp([CaptureSource(CaptureStore(store_path))]), port=0) as server:
        [summary] = get_json(server.url + "api/messages")["messages"]
        assert summary["subject"] == "Welcome, Ann"
        detail = get_json(server.url + f"api/messages/{summary['id']}")
        assert "get started (https://example.com/start)" in detail["text"]
        assert "First step" in detail["text"]
        with urllib.request.urlopen(server.url + f"m/{summary['id']}/html", timeout=10) as r:
            html = r.read().decode()
        assert 'style="color: #123456' in html
