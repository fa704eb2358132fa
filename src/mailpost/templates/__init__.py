"""Templated messages: subject, HTML and text from templates, CSS inlined, text generated.

See ``docs/templates.md``. Engines: :class:`DjangoEngine` (the project's configured
template engines) and :class:`JinjaEngine` (``pip install "mailpost[jinja]"``).
"""

from __future__ import annotations

from ._core import (
    InlineImages,
    Template,
    TemplateEngine,
    TemplateError,
    TemplateNotFound,
    UndefinedVariable,
    inline_css,
    inline_image,
    render_message,
    send_templated_mail,
)
from ._django import DjangoEngine
from ._jinja import JinjaEngine
from ._text import html_to_text

__all__ = [
    "DjangoEngine",
    "InlineImages",
    "JinjaEngine",
    "Template",
    "TemplateEngine",
    "TemplateError",
    "TemplateNotFound",
    "UndefinedVariable",
    "html_to_text",
    "inline_css",
    "inline_image",
    "render_message",
    "send_templated_mail",
]
