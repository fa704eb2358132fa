"""mailpost's deprecation warning class, in a module of its own.

:mod:`mailpost.exceptions` (which flavours its errors through the Django bridge) and the
bridge (:mod:`mailpost._django`, which makes Django-flavoured subclasses of this warning)
both need it; here, neither has to import the other for it.
"""

from __future__ import annotations

__all__ = ["MailpostDeprecationWarning"]


class MailpostDeprecationWarning(DeprecationWarning):
    """A deprecated (compatibility-only) argument, setting or call was used."""

    __module__ = "mailpost.exceptions"
