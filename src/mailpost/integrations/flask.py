"""Flask integration: mailpost settings from ``app.config``, app-factory friendly.

::

    from flask import Flask
    from mailpost.integrations.flask import Mailpost

    mail = Mailpost()

    def create_app(config: dict) -> Flask:
        app = Flask(__name__)
        app.config.update(config)       # MAILERS, DEFAULT_FROM_EMAIL, ADMINS, ...
        mail.init_app(app)
        return app

Inside a request or app context, mailpost reads its settings (``MAILERS``,
``DEFAULT_FROM_EMAIL``, ``SERVER_EMAIL``, ``ADMINS``, ``MANAGERS``,
``EMAIL_SUBJECT_PREFIX``, ``DEFAULT_CHARSET``, ``EMAIL_USE_LOCALTIME``) from the current
app's config, so several apps in one process each send with their own. Outside any app
context, ``mailpost.configure()`` / the environment apply as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mailpost import _config
from mailpost.exceptions import MissingDependency

try:
    from flask import current_app, has_app_context
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        'mailpost.integrations.flask needs Flask: pip install "mailpost[flask]"'
    ) from exc

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Mailpost"]

_EXTENSION = "mailpost"


def _app_settings() -> Mapping[str, Any] | None:
    if not has_app_context() or _EXTENSION not in current_app.extensions:
        return None
    return current_app.config


class Mailpost:
    """The Flask extension: ``Mailpost(app)`` or ``Mailpost()`` + ``init_app(app)``."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Make ``app``'s config the source of mailpost settings in its contexts.

        Every mailer in ``MAILERS`` is built once here, so a misconfigured mailer fails
        at startup with :class:`~mailpost.InvalidMailer` instead of at the first send.
        """
        _config.add_source(_app_settings)
        app.extensions[_EXTENSION] = self
        with app.app_context():
            from mailpost.handler import mailers

            for alias in mailers:
                mailers[alias]
