"""A FastAPI app that sends email from a request handler with ``await asend_mail(...)``.

The send runs on the server's event loop (mailpost's SMTP engine is native asyncio), so
other requests keep being served while the SMTP server answers. Run it against a local
test SMTP server::

    python -m aiosmtpd -n -l 127.0.0.1:8025 &
    MAILPOST_MAILERS='{"default": "smtp://127.0.0.1:8025?timeout=10"}' \\
        uvicorn examples.fastapi_app:app
    curl -X POST localhost:8000/contact -H 'content-type: application/json' \\
        -d '{"email": "ann@example.com", "message": "Hello!"}'

Needs ``pip install fastapi uvicorn``.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import mailpost

app = FastAPI(title="mailpost contact form")

SUPPORT = ["support@example.com"]


class Contact(BaseModel):
    email: str
    message: str


@app.post("/contact")
async def contact(form: Contact) -> dict[str, int]:
    """Forward a contact-form message to support; 400 for a bad address, 503 if the mail
    server did not take it (the client may retry)."""
    try:
        sent = await mailpost.asend_mail(
            f"Contact form: {form.email}",
            form.message,
            "website@example.com",
            SUPPORT,
        )
    except mailpost.BadHeaderError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    except mailpost.DeliveryError as exc:
        status = 503 if exc.retryable else 502
        raise HTTPException(status_code=status, detail="the mail server refused") from exc
    return {"sent": sent}
