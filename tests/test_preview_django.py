"""The preview mounted in a Django project (run in a subprocess with its own settings)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import django
    from django.conf import settings
    from django.urls import include, path

    urlpatterns = [path("_mail/", include("mailpost.integrations.django.preview"))]
    settings.configure(
        DEBUG=sys.argv[2] == "debug",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"],
        MIDDLEWARE=["django.middleware.clickjacking.XFrameOptionsMiddleware"],
        MAILERS={"default": "capture://" + sys.argv[1]},
    )
    django.setup()
    from django.test import Client

    import mailpost
    mailpost.send_mail("Hello from Django", "Text body", "a@example.com", ["b@example.com"],
                       html_message="<p id=x>HTML body</p>")
    client = Client()
    out = {}
    for url in ("/_mail/", "/_mail/api/messages", "/_mail/static/app.js"):
        r = client.get(url)
        out[url] = [r.status_code, r.headers.get("Content-Security-Policy", "")]
    r = client.get("/_mail/api/messages")
    listing = json.loads(r.content) if r.status_code == 200 else {"messages": []}
    out["subjects"] = [m["subject"] for m in listing["messages"]]
    mid = listing["messages"][0]["id"] if listing["messages"] else "capture-1"
    r = client.get(f"/_mail/m/{mid}/html")
    out["html"] = [r.status_code, r.headers.get("Content-Security-Policy", ""),
                   r.headers.get("X-Frame-Options", ""), r.content.decode()]
    detail = client.get(f"/_mail/api/messages/{mid}")
    out["raw_url"] = json.loads(detail.content)["raw_url"] if detail.status_code == 200 else None
    out["index"] = client.get("/_mail/").content.decode()
    print(json.dumps(out))
    """
)


def run(tmp_path: Path, mode: str) -> dict[str, object]:
    script = tmp_path / "site_urls.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c.sqlite3"), mode],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_django_mount_serves_the_preview_under_debug(tmp_path: Path) -> None:
    out = run(tmp_path, "debug")
    assert out["/_mail/"][0] == 200
    assert "script-src 'self'" in out["/_mail/"][1]
    assert out["/_mail/api/messages"][0] == 200
    assert out["/_mail/static/app.js"][0] == 200
    assert out["subjects"] == ["Hello from Django"]
    status, csp, xframe, html = out["html"]
    assert status == 200
    assert csp.startswith("default-src 'none'; img-src cid: data:")
    assert xframe == "SAMEORIGIN"
    assert "id=x" in html
    assert out["raw_url"] == "/_mail/m/capture-1/raw"
    assert 'src="/_mail/static/app.js"' in out["index"]


def test_django_mount_is_404_without_debug(tmp_path: Path) -> None:
    out = run(tmp_path, "nodebug")
    assert out["/_mail/"][0] == 404
    assert out["/_mail/api/messages"][0] == 404
