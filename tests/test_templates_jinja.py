"""mailpost.templates with the Jinja2 engine: blocks, sibling files, CSS, text, images."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import flask
import jinja2
import pytest

from mailpost.message import serialize
from mailpost.templates import (
    JinjaEngine,
    TemplateError,
    TemplateNotFound,
    UndefinedVariable,
    html_to_text,
    render_message,
)

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)

BLOCKS = """{% block subject %}Welcome,
  {{ name }}!{% endblock %}
{% block html %}<html><head><style>p { color: #333333 }</style>
<link rel="stylesheet" href="mail.css"></head>
<body><h1>Hi {{ name }}</h1><p>Start at <a href="https://example.com/start">your dashboard</a>.</p>
<img src="{{ inline_image('logo.png') }}" alt="Logo">
<ul><li>Fast</li><li>Safe</li></ul>
<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>9 EUR</td></tr></table>
</body></html>{% endblock %}
"""


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    (tmp_path / "welcome.html").write_text(BLOCKS)
    (tmp_path / "mail.css").write_text("h1 { font-size: 20px }\n")
    (tmp_path / "logo.png").write_bytes(PNG)
    (tmp_path / "order.subject.txt").write_text("Order {{ number }}\n shipped\n")
    (tmp_path / "order.html").write_text("<p>Order <b>{{ number }}</b></p>")
    (tmp_path / "order.txt").write_text("Order {{ number }} (text template)\n")
    return tmp_path


def parse(message: object) -> email.message.EmailMessage:
    raw = serialize(message)  # type: ignore[arg-type]
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_blocks_give_subject_html_and_generated_text(tdir: Path) -> None:
    msg = render_message(
        "welcome.html", {"name": "Ann"}, to=["ann@example.org"], from_email="shop@example.com",
        engine=JinjaEngine(tdir),
    )  # fmt: skip
    assert msg.subject == "Welcome, Ann!"
    html, mimetype = msg.alternatives[0]
    assert mimetype == "text/html"
    assert '<h1 style="font-size: 20px;">Hi Ann</h1>' in html  # linked stylesheet inlined
    assert 'style="color: #333333;"' in html  # <style> inlined
    assert "<style>" not in html
    assert "your dashboard (https://example.com/start)" in msg.body
    assert "- Fast\n- Safe" in msg.body
    assert "Plan | Price" in msg.body
    assert "Pro  | 9 EUR" in msg.body
    assert msg.body.startswith("Hi Ann\n======")


def test_inline_image_is_a_related_part_with_matching_content_id(tdir: Path) -> None:
    msg = render_message("welcome.html", {"name": "Ann"}, to=["a@example.org"],
                         from_email="s@example.com", engine=JinjaEngine(tdir))  # fmt: skip
    parsed = parse(msg)
    assert parsed.get_content_type() == "multipart/alternative"
    text, related = parsed.get_payload()  # type: ignore[misc]
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    src = html_part.get_content().split('src="cid:')[1].split('"')[0]
    assert image["Content-ID"] == f"<{src}>"
    assert image.get_content_type() == "image/png"
    assert image.get_content() == PNG


def test_sibling_files_use_text_template_and_one_line_subject(tdir: Path) -> None:
    msg = render_message("order", {"number": 42}, to=["a@example.org"],
                         from_email="s@example.com", engine=JinjaEngine(tdir))  # fmt: skip
    assert msg.subject == "Order 42 shipped"
    assert msg.body == "Order 42 (text template)"  # Jinja2 drops one trailing newline
    assert "<b>42</b>" in msg.alternatives[0][0]


def test_subject_newlines_never_reach_headers(tdir: Path) -> None:
    (tdir / "evil.subject.txt").write_text("Hi\r\nBcc: victim@example.net\n")
    (tdir / "evil.txt").write_text("x")
    msg = render_message("evil", to=["a@example.org"], from_email="s@example.com",
                         engine=JinjaEngine(tdir))  # fmt: skip
    assert msg.subject == "Hi Bcc: victim@example.net"
    assert parse(msg)["Bcc"] is None


def test_missing_template_names_searched_paths(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(TemplateNotFound) as info:
        render_message("nope", to=["a@example.org"], engine=JinjaEngine([tmp_path, other]))
    text = str(info.value)
    assert "nope.html" in text
    assert str(tmp_path / "nope.txt") in text
    assert str(other / "nope.subject.txt") in text


def test_strict_mode_raises_on_undefined_variable(tdir: Path) -> None:
    (tdir / "s.txt").write_text("Hello {{ nmae }}")
    (tdir / "s.subject.txt").write_text("x")
    lax = render_message("s", {"name": "Ann"}, to=["a@example.org"], engine=JinjaEngine(tdir))
    assert lax.body == "Hello "
    with pytest.raises(UndefinedVariable, match="nmae"):
        render_message("s", {"name": "Ann"}, to=["a@example.org"],
                       engine=JinjaEngine(tdir, strict=True))  # fmt: skip


def test_user_environment_is_used_and_not_modified(tdir: Path) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tdir)), autoescape=True)
    env.filters["shout"] = lambda s: s.upper()
    (tdir / "f.txt").write_text("{{ 'hi' | shout }}")
    (tdir / "f.subject.txt").write_text("s")
    msg = render_message("f", to=["a@example.org"], engine=JinjaEngine(environment=env,
                         strict=True))  # fmt: skip
    assert msg.body == "HI"
    assert env.undefined is jinja2.Undefined
    assert "inline_image" not in env.globals


def test_missing_subject_is_an_error_unless_given(tdir: Path) -> None:
    (tdir / "n.txt").write_text("body")
    with pytest.raises(TemplateError, match="no subject"):
        render_message("n", to=["a@example.org"], engine=JinjaEngine(tdir))
    msg = render_message("n", to=["a@example.org"], subject="Given", engine=JinjaEngine(tdir))
    assert msg.subject == "Given"


def test_missing_inline_image_names_the_searched_paths(tdir: Path) -> None:
    (tdir / "i.html").write_text(
        "{% block subject %}s{% endblock %}{% block html %}"
        '<img src="{{ inline_image("gone.png") }}">{% endblock %}'
    )
    with pytest.raises(TemplateNotFound, match=r"gone\.png"):
        render_message("i.html", to=["a@example.org"], engine=JinjaEngine(tdir))


def test_text_conversion_of_links_lists_tables() -> None:
    text = html_to_text(
        "<p>See <a href='https://x.example/a'>the docs</a> or "
        "<a href='https://x.example/b'>https://x.example/b</a>.</p>"
        "<ol><li>one</li><li>two</li></ol>"
        "<table><tr><td>a</td><td>bb</td></tr><tr><td>ccc</td><td>d</td></tr></table>"
        "<script>alert(1)</script>"
    )
    assert text == (
        "See the docs (https://x.example/a) or https://x.example/b.\n\n"
        "1. one\n2. two\n\n"
        "a   | bb\nccc | d\n"
    )


def test_nested_lists_are_indented_without_blank_lines() -> None:
    text = html_to_text("<ul><li>One</li><li>Two<ul><li>nested</li></ul></li></ul>")
    assert text == "- One\n- Two\n  - nested\n"


def test_flask_app_jinja_environment(tmp_path: Path) -> None:
    (tmp_path / "hello.html").write_text(
        "{% block subject %}Hi {{ who }}{% endblock %}"
        "{% block html %}<p>Hi {{ who }} from {{ config.NAME }}</p>{% endblock %}"
    )
    app = flask.Flask(__name__, template_folder=str(tmp_path))
    app.config["NAME"] = "the shop"
    with app.app_context():
        engine = JinjaEngine(environment=app.jinja_env)
        msg = render_message(
            "hello.html", {"who": "Ann", "config": app.config}, to=["a@example.org"], engine=engine
        )
    assert msg.subject == "Hi Ann"
    assert msg.body == "Hi Ann from the shop\n"


def test_child_template_uses_parent_blocks_and_super(tmp_path: Path) -> None:
    (tmp_path / "base.html").write_text(
        "{% block subject %}Base{% endblock %}"
        "{% block html %}<div>{% block content %}base content{% endblock %}</div>{% endblock %}"
    )
    (tmp_path / "child.html").write_text(
        '{% extends "base.html" %}{% block subject %}Child {{ n }}{% endblock %}'
        "{% block content %}<p>child {{ n }}</p>{{ super() }}{% endblock %}"
    )
    msg = render_message("child.html", {"n": 1}, to=["a@example.org"], css=False,
                         engine=JinjaEngine(tmp_path))  # fmt: skip
    assert msg.subject == "Child 1"
    assert msg.alternatives[0][0] == "<div><p>child 1</p>base content</div>"


def test_inline_image_is_found_next_to_the_template(tmp_path: Path) -> None:
    (tmp_path / "emails").mkdir()
    (tmp_path / "emails" / "logo.png").write_bytes(PNG)
    (tmp_path / "emails" / "w.html").write_text(
        "{% block subject %}s{% endblock %}"
        "{% block html %}<img src=\"{{ inline_image('logo.png') }}\">{% endblock %}"
    )
    msg = render_message("emails/w.html", to=["a@example.org"], engine=JinjaEngine(tmp_path))
    assert len(msg.attachments) == 1
    assert "cid:" in msg.alternatives[0][0]


def test_templates_all_is_sorted_and_complete() -> None:
    import mailpost.templates as t

    assert t.__all__ == sorted(t.__all__)
    assert all(hasattr(t, name) for name in t.__all__)
    classes = {n for n in dir(t) if n[0].isupper() and not n.startswith("_")}
    assert classes <= set(t.__all__)


def test_subject_and_text_blocks_are_not_html_escaped(tmp_path: Path) -> None:
    (tmp_path / "e.html").write_text(
        "{% block subject %}{{ a }} & {{ b }}{% endblock %}"
        "{% block html %}<p>{{ b }}</p>{% endblock %}{% block text %}{{ b }}{% endblock %}"
    )
    msg = render_message("e.html", {"a": "Tom", "b": "<Jerry>"}, to=["a@example.org"],
                         css=False, engine=JinjaEngine(tmp_path))  # fmt: skip
    assert msg.subject == "Tom & <Jerry>"
    assert msg.body == "<Jerry>"
    assert msg.alternatives[0][0] == "<p>&lt;Jerry&gt;</p>"
