"""The Jinja2 engine: an Environment from a search path, or one you configured."""

from __future__ import annotations

import contextlib
import os
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
    """A Jinja2 template seen through mailpost's :class:`~._core.Template` interface."""

    def __init__(self, template: jinja2.Template) -> None:
        self.template = template
        self.name = template.name or "<string>"
        self.filename = template.filename

    def block_names(self) -> frozenset[str]:
        return frozenset(self.template.blocks)

    def render(self, context: Mapping[str, Any], block: str | None = None) -> str:
        jinja2 = _jinja()
        try:
            if block is None:
                return str(self.template.render(context))
            ctx = self.template.new_context(dict(context))
            return str(self.template.environment.concat(self.template.blocks[block](ctx)))
        except jinja2.UndefinedError as exc:
            raise UndefinedVariable(f"{self.name}: {exc}") from exc


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
