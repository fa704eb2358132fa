"""Templated messages: one call renders subject, HTML and text and builds the message.

The engine interface is two small Protocols (:class:`TemplateEngine`, :class:`Template`);
:mod:`._django` and :mod:`._jinja` implement them. Inline images are collected through a
context variable, so template tags/globals need no access to the message being built.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.message
import hashlib
import mimetypes
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mailpost.exceptions import MailpostError
from mailpost.message import EmailMultiAlternatives

from ._text import html_to_text

__all__ = [
    "InlineImages",
    "Template",
    "TemplateEngine",
    "TemplateError",
    "TemplateNotFound",
    "UndefinedVariable",
    "inline_css",
    "inline_image",
    "render_message",
    "send_templated_mail",
]


class TemplateError(MailpostError):
    """A template could not be used to build a message."""


class TemplateNotFound(TemplateError, LookupError):
    """No template of that name; ``tried`` lists every path that was searched."""

    def __init__(self, names: Sequence[str], tried: Sequence[str]) -> None:
        self.names = list(names)
        self.tried = list(tried)
        where = "\n  ".join(self.tried) or "(the engine reported no search paths)"
        super().__init__(f"template {' / '.join(self.names)!s} not found; searched:\n  {where}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.names, self.tried))


class UndefinedVariable(TemplateError, NameError):
    """Strict mode: the template used a variable the context does not define."""


class Template(Protocol):
    """One loaded template, as an engine hands it back."""

    name: str
    #: The file it was loaded from, when it came from a file (for stylesheet and image paths).
    filename: str | None

    def block_names(self) -> frozenset[str]:
        """Top-level block names, including inherited ones."""
        ...

    def render(
        self, context: Mapping[str, Any], block: str | None = None, *, plain: bool = False
    ) -> str:
        """The whole template, or only ``block``; ``plain``: text, no HTML escaping."""
        ...


class TemplateEngine(Protocol):
    """What :func:`render_message` needs from a template engine."""

    def get_template(self, name: str) -> Template:
        """Load ``name``; raise :class:`TemplateNotFound` naming the searched paths."""
        ...

    def language(self, code: str | None) -> contextlib.AbstractContextManager[None]:
        """Activate a language for the renders made inside the block (``None``: no change)."""
        ...

    def asset_dirs(self) -> list[Path]:
        """Directories where ``inline_image("logo.png")`` looks for relative paths."""
        ...


# -- inline images ------------------------------------------------------------------------


class InlineImages:
    """Images referenced while one message renders; each becomes a ``cid:`` related part."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = list(dirs)
        self.parts: dict[str, email.message.MIMEPart] = {}

    def add(self, source: str | os.PathLike[str] | bytes, filename: str | None = None) -> str:
        """Register an image (a path, or bytes with a ``filename``); return its ``cid:`` URL."""
        if isinstance(source, (bytes, bytearray)):
            if not filename:
                raise TemplateError("inline_image(): bytes need a filename= (for the image type)")
            data = bytes(source)
        else:
            path = self._find(source)
            data = path.read_bytes()
            filename = filename or path.name
        filename = str.__str__(filename)
        key = hashlib.sha256(data).hexdigest()[:24]
        cid = f"{key}.{re.sub(r'[^A-Za-z0-9.-]', '-', filename)}@mailpost"
        if cid not in self.parts:
            mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            maintype, _, subtype = mimetype.partition("/")
            part = email.message.MIMEPart()
            part.set_content(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>",
                             disposition="inline", filename=filename)  # fmt: skip
            self.parts[cid] = part
        return f"cid:{cid}"

    def _find(self, source: str | os.PathLike[str]) -> Path:
        # str() first: Python 3.10's pathlib cannot intern str subclasses (Django's SafeString).
        path = Path(str.__str__(source) if isinstance(source, str) else source)
        if path.is_absolute():
            if path.is_file():
                return path
            candidates = [path]
        else:
            candidates = [d / path for d in self.dirs]
            for candidate in candidates:
                if candidate.is_file():
                    return candidate
        tried = "\n  ".join(str(c) for c in candidates) or "(no image directories)"
        raise TemplateNotFound([os.fspath(source)], [str(c) for c in candidates]) from (
            FileNotFoundError(f"inline image {os.fspath(source)!r} not found in:\n  {tried}")
        )


_images: contextvars.ContextVar[InlineImages | None] = contextvars.ContextVar(
    "mailpost_inline_images", default=None
)


def inline_image(source: str | os.PathLike[str] | bytes, filename: str | None = None) -> str:
    """The ``cid:`` URL of an image attached to the message being rendered.

    Called by the Django tag ``{% inline_image %}`` and the Jinja2 global
    ``inline_image()``; only valid while :func:`render_message` renders.
    """
    images = _images.get()
    if images is None:
        raise TemplateError("inline_image() is only available while render_message() renders")
    return images.add(source, filename)


# -- CSS ----------------------------------------------------------------------------------


def inline_css(html: str, *, base_url: str | None = None) -> str:
    """``html`` with ``<style>`` and ``<link rel=stylesheet>`` rules moved into ``style=``.

    Relative stylesheet links resolve against ``base_url`` (e.g. ``file:///app/emails/``).
    Needs ``pip install "mailpost[templates]"`` (css-inline).
    """
    try:
        import css_inline
    except ImportError as exc:
        raise TemplateError(
            'CSS inlining needs css-inline: pip install "mailpost[templates]" '
            "(or pass inline_css=False)"
        ) from exc
    try:
        return css_inline.CSSInliner(base_url=base_url, keep_at_rules=True).inline(html)
    except ValueError as exc:
        raise TemplateError(f"CSS inlining failed: {exc}") from exc


# -- building messages --------------------------------------------------------------------

_SUFFIX = re.compile(r"\.[A-Za-z0-9]+$")


def _clean_subject(subject: str) -> str:
    return " ".join(subject.split())


def _default_engine() -> TemplateEngine:
    from ._django import DjangoEngine

    return DjangoEngine()


def _render_parts(
    engine: TemplateEngine, name: str, context: Mapping[str, Any], images: InlineImages
) -> tuple[str | None, str | None, str | None, str | None]:
    """(subject, html, text, filename of the HTML source) from blocks or sibling files."""
    if _SUFFIX.search(name.rsplit("/", 1)[-1]):
        template = engine.get_template(name)
        _near(images, template)
        blocks = template.block_names()
        if not blocks & {"html", "text"}:
            raise TemplateError(
                f"template {name!r} defines neither {{% block html %}} nor {{% block text %}}; "
                "name the template without its suffix to use sibling files "
                "(welcome.subject.txt, welcome.html, welcome.txt)"
            )

        def block(b: str) -> str | None:
            return template.render(context, b, plain=b != "html") if b in blocks else None

        return block("subject"), block("html"), block("text"), template.filename
    found: dict[str, Template] = {}
    tried: list[str] = []
    for suffix in (".subject.txt", ".html", ".txt"):
        try:
            found[suffix] = engine.get_template(name + suffix)
        except TemplateNotFound as exc:
            tried.extend(exc.tried)
    if ".html" not in found and ".txt" not in found:
        raise TemplateNotFound([name + ".html", name + ".txt"], tried)
    for t in found.values():
        _near(images, t)

    def file(suffix: str) -> str | None:
        t = found.get(suffix)
        return None if t is None else t.render(context, plain=suffix != ".html")

    html_source = found.get(".html")
    return (
        file(".subject.txt"),
        file(".html"),
        file(".txt"),
        None if html_source is None else html_source.filename,
    )


def _near(images: InlineImages, template: Template) -> None:
    """Look for inline images next to the template file first."""
    if template.filename:
        here = Path(template.filename).parent
        if here not in images.dirs:
            images.dirs.insert(0, here)


def render_message(
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    to: Sequence[str],
    from_email: str | None = None,
    subject: str | None = None,
    engine: TemplateEngine | None = None,
    language: str | None = None,
    cc: Sequence[str] | None = None,
    bcc: Sequence[str] | None = None,
    reply_to: Sequence[str] | None = None,
    headers: dict[str, Any] | None = None,
    css: bool = True,
    text_from_html: bool = True,
    image_dirs: Sequence[str | os.PathLike[str]] | None = None,
) -> EmailMultiAlternatives:
    """Build an :class:`EmailMultiAlternatives` from a template and a context.

    ``name`` with a suffix (``"emails/welcome.html"``) is one template with blocks
    ``subject``, ``html`` and/or ``text``; without (``"emails/welcome"``) it names sibling
    files ``welcome.subject.txt``, ``welcome.html``, ``welcome.txt``. The subject is
    whitespace-collapsed to one line; ``subject=`` overrides the template's. Without a text
    template the text part is generated from the HTML; CSS is inlined (``css=False`` to
    skip); ``inline_image`` references become ``multipart/related`` parts. ``language``
    activates a translation for the render (Django engine). ``engine`` defaults to Django's
    configured template engines.
    """
    engine = engine if engine is not None else _default_engine()
    context = dict(context or {})
    dirs = [Path(d) for d in image_dirs] if image_dirs is not None else engine.asset_dirs()
    # (the directory of the template file is searched first, see _near)
    images = InlineImages(dirs)
    token = _images.set(images)
    try:
        with engine.language(language):
            subj, html, text, html_file = _render_parts(engine, name, context, images)
    finally:
        _images.reset(token)
    if subject is None:
        if subj is None:
            raise TemplateError(
                f"template {name!r} gives no subject: add {{% block subject %}} or a "
                ".subject.txt file, or pass subject="
            )
        subject = subj
    if text is None and html is not None and text_from_html:
        text = html_to_text(html)  # before inlining: style= attributes only slow the parser
    if html is not None and css:
        base = Path(html_file).resolve().parent.as_uri() + "/" if html_file else None
        html = inline_css(html, base_url=base)
    message = EmailMultiAlternatives(
        _clean_subject(subject),
        text or "",
        from_email,
        list(to),
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        headers=headers,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    for part in images.parts.values():
        message.attach(part)
    return message


def send_templated_mail(
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    to: Sequence[str],
    from_email: str | None = None,
    using: str | None = None,
    fail_silently: bool = False,
    subject: str | None = None,
    engine: TemplateEngine | None = None,
    language: str | None = None,
    cc: Sequence[str] | None = None,
    bcc: Sequence[str] | None = None,
    reply_to: Sequence[str] | None = None,
    headers: dict[str, Any] | None = None,
) -> int:
    """:func:`render_message` then ``send(using=...)``; returns the number sent (0 or 1)."""
    message = render_message(
        name,
        context,
        to=to,
        from_email=from_email,
        subject=subject,
        engine=engine,
        language=language,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        headers=headers,
    )
    return message.send(fail_silently=fail_silently, using=using)


@contextlib.contextmanager
def no_language_change() -> Iterator[None]:
    """The :meth:`TemplateEngine.language` of engines without translations."""
    yield
