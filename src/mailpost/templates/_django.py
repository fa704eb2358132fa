"""The Django engine: the project's configured template engines and loaders.

Named blocks are rendered from the template's node tree: the ``{% extends %}`` chain is
walked once to fill Django's block context (so overrides and ``{{ block.super }}`` work),
then the wanted block node renders with the same context a full render would use.

Strict mode: the render runs on a copy of the Django ``Engine`` whose ``string_if_invalid``
is a marker string that raises :class:`UndefinedVariable` when Django formats it, i.e.
whenever ``{{ var }}`` or a filter argument does not resolve. ``{% if missing %}`` stays
false, as Django silences failures there by design.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._core import Template, TemplateError, TemplateNotFound, UndefinedVariable


class _Undefined(str):
    """``string_if_invalid`` for strict mode: Django formats it with the variable's name."""

    __slots__ = ()

    def __contains__(self, item: object) -> bool:
        return item == "%s"

    def __mod__(self, name: object) -> str:
        raise UndefinedVariable(f"undefined template variable: {name}")


def _django_template_module() -> Any:
    try:
        from django.template import loader
    except ImportError as exc:
        raise TemplateError('the Django engine needs: pip install "mailpost[django]"') from exc
    return loader


class DjangoTemplate:
    """A Django-backend template seen through mailpost's Template interface."""

    def __init__(self, backend_template: Any, *, strict: bool) -> None:
        self.backend_template = backend_template
        inner = getattr(backend_template, "template", None)
        self.template: Any = inner  # django.template.base.Template for the DjangoTemplates backend
        origin = getattr(inner, "origin", None)
        self.name = str(getattr(inner, "name", None) or getattr(origin, "template_name", ""))
        filename = getattr(origin, "name", None)
        self.filename = (
            filename if isinstance(filename, str) and filename != "<unknown source>" else None
        )
        self.strict = strict
        if strict and inner is not None and hasattr(inner, "engine"):
            self.template = copy.copy(inner)
            self.template.engine = _strict_engine(inner.engine)

    def _chain(self, context: Any) -> tuple[dict[str, Any], Any]:
        """Fill the block context along the extends chain; (all blocks by name, context)."""
        from django.template.loader_tags import (
            BLOCK_CONTEXT_KEY,
            BlockContext,
            BlockNode,
            ExtendsNode,
        )

        block_context = context.render_context.setdefault(BLOCK_CONTEXT_KEY, BlockContext())
        names: dict[str, Any] = {}
        current = self.template
        while True:
            nodes = current.nodelist
            node = next((n for n in nodes if isinstance(n, ExtendsNode)), None)
            if node is not None:
                block_context.add_blocks(node.blocks)
                for name, block in node.blocks.items():
                    names.setdefault(name, block)
                current = node.get_parent(context)
                continue
            own = {n.name: n for n in nodes.get_nodes_by_type(BlockNode)}
            block_context.add_blocks(own)
            for name, block in own.items():
                names.setdefault(name, block)
            return names, block_context

    def _autoescape(self, plain: bool) -> bool:
        # Django escapes every template, .txt included; subject and text parts are not HTML
        return False if plain else bool(self.template.engine.autoescape)

    def block_names(self) -> frozenset[str]:
        if self.template is None or not hasattr(self.template, "nodelist"):
            return frozenset()
        from django.template.context import Context
        from django.template.loader_tags import BlockNode, ExtendsNode

        names: set[str] = set()
        context = Context()
        with context.render_context.push_state(self.template), context.bind_template(self.template):
            current = self.template
            while True:
                names.update(n.name for n in current.nodelist.get_nodes_by_type(BlockNode))
                node = next((n for n in current.nodelist if isinstance(n, ExtendsNode)), None)
                if node is None:
                    return frozenset(names)
                current = node.get_parent(context)

    def render(
        self, context: Mapping[str, Any], block: str | None = None, *, plain: bool = False
    ) -> str:
        if block is None:
            if self.template is not None and hasattr(self.template, "nodelist"):
                from django.template.context import make_context

                ctx = make_context(dict(context), autoescape=self._autoescape(plain))
                return str(self.template.render(ctx))
            return str(self.backend_template.render(dict(context)))
        from django.template.context import make_context
        from django.template.loader_tags import BlockNode

        ctx = make_context(dict(context), autoescape=self._autoescape(plain))
        with ctx.render_context.push_state(self.template), ctx.bind_template(self.template):
            blocks, _ = self._chain(ctx)
            if block not in blocks:
                raise TemplateError(f"template {self.name!r} has no block {block!r}")
            return str(BlockNode(block, blocks[block].nodelist).render(ctx))


_strict_engines: dict[int, Any] = {}


def _strict_engine(engine: Any) -> Any:
    strict = _strict_engines.get(id(engine))
    if strict is None or strict[0] is not engine:
        clone = copy.copy(engine)
        clone.string_if_invalid = _Undefined("%s")
        strict = _strict_engines[id(engine)] = (engine, clone)
    return strict[1]


class DjangoEngine:
    """Templates from the Django project's ``TEMPLATES`` (``using`` picks one engine).

    ``strict=True`` raises :class:`UndefinedVariable` for ``{{ undefined }}`` (see the
    module docstring). Needs Django configured (``settings.configure()`` or
    ``DJANGO_SETTINGS_MODULE``); inline images resolve against the template directories.
    """

    def __init__(self, *, using: str | None = None, strict: bool = False) -> None:
        self.using = using
        self.strict = strict

    def get_template(self, name: str) -> Template:
        loader = _django_template_module()
        from django.core.exceptions import ImproperlyConfigured
        from django.template import TemplateDoesNotExist

        try:
            backend_template = loader.get_template(name, using=self.using)
        except TemplateDoesNotExist as exc:
            raise TemplateNotFound([name], _tried(exc)) from exc
        except ImproperlyConfigured as exc:
            raise _not_configured(exc) from exc
        inner = getattr(backend_template, "template", None)
        if hasattr(inner, "blocks") and hasattr(inner, "new_context"):
            # Django's Jinja2 backend: a jinja2.Template, rendered with mailpost's Jinja path
            from ._jinja import JinjaTemplate

            return JinjaTemplate(inner)  # type: ignore[arg-type]
        return DjangoTemplate(backend_template, strict=self.strict)

    def language(self, code: str | None) -> contextlib.AbstractContextManager[None]:
        if code is None:
            return _nothing()
        from django.utils import translation

        return translation.override(code)  # type: ignore[no-any-return]

    def asset_dirs(self) -> list[Path]:
        from django.core.exceptions import ImproperlyConfigured
        from django.template import engines

        dirs: list[Path] = []
        try:
            backends = engines.all()
        except ImproperlyConfigured as exc:
            raise _not_configured(exc) from exc
        for backend in backends:
            if self.using is not None and backend.name != self.using:
                continue
            for d in getattr(backend, "template_dirs", ()):
                dirs.append(Path(d))
        return dirs


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _tried(exc: Any) -> list[str]:
    tried: list[str] = []
    for item in [exc, *getattr(exc, "chain", [])]:
        for origin, _status in getattr(item, "tried", None) or []:
            where = str(getattr(origin, "name", origin))
            if where not in tried:
                tried.append(where)
    return tried


def _not_configured(exc: Exception) -> TemplateError:
    return TemplateError(
        f"DjangoEngine: Django is not configured ({exc}); outside a Django project "
        'pass engine=JinjaEngine("templates/")'
    )
