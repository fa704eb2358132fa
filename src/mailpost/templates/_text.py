"""A plain-text rendering of an HTML mail body, with the standard library only.

Why not a library: html2text is GPL-3.0 (mailpost is BSD) and emits Markdown escapes;
inscriptis pulls in lxml and requests. Mail HTML is small and regular, so a tree built with
:mod:`html.parser` and a ~200-line renderer gives readable text: links as ``text (URL)``,
lists as ``-`` / ``1.`` items, data tables as aligned columns, layout tables as paragraphs.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)
_SKIP = frozenset(["head", "script", "style", "title", "template", "noscript"])
_PARA = frozenset(["p", "h1", "h2", "h3", "h4", "h5", "h6", "address", "figure", "form", "center"])
_LINE = frozenset(
    [
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "nav",
        "aside",
        "dl",
        "dt",
        "dd",
        "caption",
    ]
)
_WS = re.compile(r"[ \t\r\n\f\v\u00a0]+")
# starting <tag> closes an open one of these, searching no further than a boundary tag
_AUTOCLOSE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), frozenset({"ul", "ol"})),
    "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "tr": (frozenset({"tr"}), frozenset({"table", "thead", "tbody", "tfoot"})),
    "p": (frozenset({"p"}), frozenset({"div", "td", "th", "li", "blockquote", "body", "table"})),
}


class _Node:
    __slots__ = ("attrs", "children", "tag")

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[_Node | str] = []


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        rule = _AUTOCLOSE.get(tag)
        if rule is not None:
            closes, boundary = rule
            for i in range(len(self.stack) - 1, 0, -1):
                open_tag = self.stack[i].tag
                if open_tag in closes:
                    del self.stack[i:]
                    break
                if open_tag in boundary:
                    break
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


class _Writer:
    """Accumulates text; block boundaries are requested, emitted before the next text."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.pending = 0
        self.space = False  # a collapsed space waits to be written
        self.line_start = True

    def text(self, data: str) -> None:
        data = _WS.sub(" ", data)
        if data.startswith(" "):
            self.space = True
            data = data.lstrip(" ")
        if not data:
            return
        self._flush()
        if self.space and not self.line_start:
            self.out.append(" ")
        self.out.append(data.rstrip(" "))
        self.space = data.endswith(" ")
        self.line_start = False

    def raw_block(self, block: str) -> None:
        if not block.strip():
            return
        self.need(1)
        self._flush()
        self.out.append(block)
        self.need(1)
        self.line_start = True

    def need(self, newlines: int) -> None:
        if self.out:
            self.pending = max(self.pending, newlines)
        self.space = False

    def hard_break(self) -> None:
        self.out.append("\n")
        self.pending = 0
        self.space = False
        self.line_start = True

    def _flush(self) -> None:
        if self.pending:
            self.out.append("\n" * self.pending)
            self.pending = 0
            self.line_start = True
            self.space = False

    def value(self) -> str:
        text = "".join(self.out)
        text = "\n".join(line.rstrip() for line in text.split("\n"))
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def html_to_text(html: str) -> str:
    """The readable plain-text version of ``html`` (a document or a fragment)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return _render(builder.root) + "\n"


def _render(node: _Node) -> str:
    writer = _Writer()
    _walk(node, writer)
    return writer.value()


def _plain(node: _Node) -> str:
    return "".join(c if isinstance(c, str) else _plain(c) for c in node.children)


def _walk(node: _Node, w: _Writer) -> None:
    for child in node.children:
        if isinstance(child, str):
            w.text(child)
            continue
        tag = child.tag
        if tag in _SKIP:
            continue
        if tag == "br":
            w.hard_break()
        elif tag == "hr":
            w.need(2)
            w.raw_block("-" * 40)
            w.need(2)
        elif tag == "img":
            alt = child.attrs.get("alt", "").strip()
            if alt:
                w.text(alt)
        elif tag == "a":
            _link(child, w)
        elif tag in ("ul", "ol"):
            w.need(2)
            w.raw_block(_list(child))
            w.need(2)
        elif tag == "blockquote":
            w.need(2)
            w.raw_block("\n".join("> " + line for line in _render(child).split("\n")))
            w.need(2)
        elif tag == "pre":
            w.need(2)
            w.raw_block(_plain(child).strip("\n"))
            w.need(2)
        elif tag == "table":
            w.need(2)
            w.raw_block(_table(child))
            w.need(2)
        elif tag in ("h1", "h2"):
            title = _render(child)
            w.need(2)
            w.raw_block(f"{title}\n{('=' if tag == 'h1' else '-') * len(title)}" if title else "")
            w.need(2)
        elif tag in _PARA:
            w.need(2)
            _walk(child, w)
            w.need(2)
        elif tag in _LINE or tag in ("tr", "li", "tbody", "thead", "tfoot"):
            w.need(1)
            _walk(child, w)
            w.need(1)
        else:
            _walk(child, w)


def _link(node: _Node, w: _Writer) -> None:
    label = _WS.sub(" ", _render(node)).strip()
    href = node.attrs.get("href", "").strip()
    shown = href.removeprefix("mailto:")
    if not href or href.startswith(("#", "javascript:", "cid:")) or shown == label:
        w.text(label or shown if href.startswith("mailto:") else label)
        return
    w.text(f"{label} ({href})" if label else href)


def _list(node: _Node) -> str:
    items: list[str] = []
    number = int(node.attrs.get("start", "1") or 1) if node.tag == "ol" else 0
    for child in node.children:
        if isinstance(child, str):
            continue
        if child.tag != "li":
            text = _render(child)
            if text:
                items.append(text)
            continue
        marker = f"{number}. " if node.tag == "ol" else "- "
        number += 1
        body = [line for line in _render(child).split("\n") if line.strip()] or [""]
        pad = " " * len(marker)
        items.append(
            "\n".join([marker + body[0]] + [pad + line if line else "" for line in body[1:]])
        )
    return "\n".join(items)


def _rows(node: _Node) -> list[list[tuple[str, bool]]]:
    rows: list[list[tuple[str, bool]]] = []
    for child in node.children:
        if isinstance(child, str):
            continue
        if child.tag in ("thead", "tbody", "tfoot"):
            rows.extend(_rows(child))
        elif child.tag == "tr":
            cells = [
                (_render(c), c.tag == "th")
                for c in child.children
                if not isinstance(c, str) and c.tag in ("td", "th")
            ]
            rows.append(cells)
    return rows


def _table(node: _Node) -> str:
    rows = [r for r in _rows(node) if any(text for text, _ in r)]
    if not rows:
        return ""
    columns = max(len(r) for r in rows)
    single_line = all("\n" not in text for r in rows for text, _ in r)
    if columns == 1 or not single_line:
        # a layout table: every non-empty cell is its own paragraph
        return "\n\n".join(text for r in rows for text, _ in r if text)
    widths = [0] * columns
    for r in rows:
        for i, (text, _) in enumerate(r):
            widths[i] = max(widths[i], len(text))
    if sum(widths) + 3 * (columns - 1) > 78:
        return "\n".join(" | ".join(text for text, _ in r) for r in rows)
    lines: list[str] = []
    for r in rows:
        lines.append(" | ".join(text.ljust(widths[i]) for i, (text, _) in enumerate(r)).rstrip())
        if all(header for _, header in r):
            lines.append("-+-".join("-" * w for w in widths[: len(r)]))
    return "\n".join(lines)
