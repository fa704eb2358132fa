"""A Flask app whose contact form sends mail through mailpost.

Run it:  pip install "mailpost[flask]" && flask --app examples/flask_app.py run
then:    curl -d subject=Hi -d message=Hello -d email=me@example.com localhost:5000/contact
With the default config below, the message is printed by the console mailer.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

import mailpost
from mailpost.integrations.flask import Mailpost

mail = Mailpost()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        MAILERS={"default": "console://"},
        DEFAULT_FROM_EMAIL="Website <noreply@example.com>",
        CONTACT_TO=["support@example.com"],
    )
    app.config.update(config or {})
    mail.init_app(app)

    @app.post("/contact")
    def contact() -> tuple[dict[str, Any], int]:
        form = request.form
        message = mailpost.EmailMessage(
            subject=f"Contact form: {form.get('subject', '')}",
            body=form.get("message", ""),
            to=app.config["CONTACT_TO"],
            reply_to=[form.get("email", "")],
        )
        try:
            sent = message.send()
        except ValueError as exc:  # a line break in the subject, a bad address, ...
            return {"error": str(exc)}, 400
        return {"sent": sent, "message_id": message.delivery.message_id}, 202

    return app


if __name__ == "__main__":
    create_app().run()
