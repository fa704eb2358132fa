"""The Jinja2 engine: an Environment from a search path, or one you configured."""

from __future__ import annotations

import contextlib
import html
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._core import TemplateError, TemplateNotFound, UndefinedVariable, inline_image

if TYPE_CHECKING:
    import jinja2


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError as exc:
        raise TemplateError('the Jinja2 engine needs: pip install "mailpost[jinja]"') from exc
    return jinja2


class JinjaTemplate:
    """A Jinja2 template seen through mailpost's :class:`~._core.Template` interface.

    With ``{% extends %}``, blocks defined only in a parent and ``{{ super() }}`` work: the
    render runs the template's root function once, which registers the whole chain's
    blocks on the context as a normal render does, then renders the wanted block.
    """

    def __init__(self, template: jinja2.Template) -> None:
        self.template = template
        self.name = template.name or "<string>"
        self.filename = template.filename

    def block_names(self) -> frozenset[str]:
        return _chain(self.template)[0]

    def render(
        self, context: Mapping[str, Any], block: str | None = None, *, plain: bool = False
    ) -> str:
        out = self._render(context, block)
        if plain and self._autoescaped():
            # autoescaping is compiled into the template: undo it for subject and text parts
            return html.unescape(out)
        return out

    def _autoescaped(self) -> bool:
        setting = self.template.environment.autoescape
        return bool(setting(self.template.name) if callable(setting) else setting)

    def _render(self, context: Mapping[str, Any], block: str | None) -> str:
        jinja2 = _jinja()
        t = self.template
        try:
            if block is None:
                return str(t.render(context))
            ctx = t.new_context(dict(context))
            if _chain(t)[1]:
                for _ in t.root_render_func(ctx):
                    pass
            if block not in ctx.blocks:
                raise TemplateError(f"template {self.name!r} has no block {block!r}")
            return str(t.environment.concat(ctx.blocks[block][0](ctx)))
        except jinja2.UndefinedError as exc:
            raise UndefinedVariable(f"{self.name}: {exc}") from exc


_chains: weakref.WeakKeyDictionary[Any, tuple[frozenset[str], bool]] = weakref.WeakKeyDictionary()


def _chain(template: Any) -> tuple[frozenset[str], bool]:
    """(block names along the extends chain, whether the template extends another)."""
    known = _chains.get(template)
    if known is not None:
        return known
    jinja2 = _jinja()
    names = set(template.blocks)
    parent_name = None
    env = template.environment
    if template.name is not None and env.loader is not None:
        source = env.loader.get_source(env, template.name)[0]
        extends = env.parse(source).find(jinja2.nodes.Extends)
        if extends is not None and isinstance(extends.template, jinja2.nodes.Const):
            parent_name = extends.template.value
    extends_other = parent_name is not None
    if parent_name is not None:
        names |= _chain(env.get_template(parent_name))[0]
    result = (frozenset(names), extends_other)
    _chains[template] = result
    return result


class JinjaEngine:
    """Templates from ``search_path`` directories, or from a ready ``environment``.

    ``strict=True`` makes undefined variables raise :class:`UndefinedVariable` (Jinja2's
    ``StrictUndefined``, on an overlay, so your environment is not changed). The global
    ``inline_image`` is added to the (overlay) environment.
    """

    def __init__(
        self,
        search_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        environment: jinja2.Environment | None = None,
        strict: bool = False,
    ) -> None:
        jinja2 = _jinja()
        if (search_path is None) == (environment is None):
            raise TemplateError("JinjaEngine: give exactly one of search_path or environment")
        if environment is None:
            paths = [search_path] if isinstance(search_path, (str, os.PathLike)) else search_path
            environment = jinja2.Environment(
                loader=jinja2.FileSystemLoader([os.fspath(p) for p in paths or ()]),
                autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            )
        env = environment.overlay(undefined=jinja2.StrictUndefined) if strict else environment
        if env is environment:
            env = environment.overlay()
        env.globals = {**env.globals, "inline_image": inline_image}
        self.environment = env

    def get_template(self, name: str) -> JinjaTemplate:
        jinja2 = _jinja()
        try:
            return JinjaTemplate(self.environment.get_template(name))
        except jinja2.TemplateNotFound as exc:
            raise TemplateNotFound([name], _searched(self.environment.loader, name)) from exc

    def language(self, code: str | None) -> contextlib.AbstractContextManager[None]:
        if code is not None:
            raise TemplateError(
                "language= is supported by the Django engine; with Jinja2, install gettext "
                "translations on your environment (jinja2.ext.i18n) per language"
            )
        return _nothing()

    def asset_dirs(self) -> list[Path]:
        return [Path(p) for p in _searched(self.environment.loader, "")]


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _searched(loader: Any, name: str) -> list[str]:
    jinja2 = _jinja()
    if isinstance(loader, jinja2.FileSystemLoader):
        return [os.path.join(p, name) if name else p for p in loader.searchpath]
    if isinstance(loader, jinja2.ChoiceLoader):
        return [p for sub in loader.loaders for p in _searched(sub, name)]
    if isinstance(loader, jinja2.PrefixLoader):
        return [p for sub in loader.mapping.values() for p in _searched(sub, name)]
    if name and loader is not None:
        return [f"{name} via {type(loader).__name__}"]
    return []
