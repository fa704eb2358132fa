"""Django template tags for mail: ``{% load mailpost %}{% inline_image "logo.png" %}``.

Available as ``{% load mailpost %}`` when ``mailpost.integrations.django`` is in
``INSTALLED_APPS``, or without the app through the engine option
``"libraries": {"mailpost": "mailpost.templates.django_tags"}``.
"""

from __future__ import annotations

from django import template

from ._core import inline_image as _inline_image

register = template.Library()


@register.simple_tag(name="inline_image")  # type: ignore[untyped-decorator]  # no django stubs
def inline_image(source: str, filename: str | None = None) -> str:
    """The ``cid:`` URL of ``source`` (a path in the template dirs, or bytes + filename)."""
    return _inline_image(source, filename)
