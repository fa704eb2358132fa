"""Resend: ``POST /emails`` of the Resend REST API (api.resend.com, current as of 2025).

Fields per the API reference "Send Email": from, to, cc, bcc, reply_to, subject, text,
html, headers, attachments (base64 ``content``, ``filename``, ``content_type``,
``content_id`` for inline images), tags (name/value), scheduled_at, template. Every request
carries ``Idempotency-Key`` derived from the Message-ID (docs: "Idempotency Keys"), so a
retry after a lost reply is not delivered twice.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, UnsupportedFeature, Verdict

__all__ = ["EmailBackend", "ResendBackend", "resend_payload"]


def resend_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body of ``POST /emails`` for ``parts`` (pure)."""
    provider = "Resend"
    extras = parts.extras
    payload: dict[str, Any] = {"from": parts.from_email, "to": parts.to, "subject": parts.subject}
    if not parts.to:
        raise UnsupportedFeature(provider, "a message without To recipients")
    if parts.cc:
        payload["cc"] = parts.cc
    if parts.bcc:
        payload["bcc"] = parts.bcc
    if parts.reply_to:
        payload["reply_to"] = parts.reply_to
    if parts.text is not None:
        payload["text"] = parts.text
    if parts.html is not None:
        payload["html"] = parts.html
    headers = dict(parts.headers)
    if parts.message_id:
        headers["Message-ID"] = parts.message_id
    if headers:
        payload["headers"] = headers
    if parts.attachments:
        attachments = []
        for a in parts.attachments:
            item: dict[str, Any] = {
                "content": a.b64,
                "filename": a.filename or ("inline" if a.content_id else "attachment"),
                "content_type": a.mimetype,
            }
            if a.content_id:
                item["content_id"] = a.content_id
            attachments.append(item)
        payload["attachments"] = attachments
    tags = [{"name": t, "value": "true"} for t in extras.tags]
    tags += [{"name": k, "value": str(v)} for k, v in extras.metadata.items()]
    if tags:
        payload["tags"] = tags
    if extras.send_at is not None:
        payload["scheduled_at"] = extras.send_at.isoformat()
    if extras.template_id is not None:
        payload["template"] = {"id": extras.template_id}
        if extras.template_data:
            payload["template"]["variables"] = dict(extras.template_data)
    if extras.track_opens is not None or extras.track_clicks is not None:
        raise UnsupportedFeature(provider, "per-message tracking switches (set them per domain)")
    if extras.stream is not None:
        raise UnsupportedFeature(provider, "a message stream")
    return payload


class ResendBackend(HTTPBackend):
    """Send through Resend's ``POST /emails``; OPTIONS as :class:`HTTPBackend`."""

    provider: ClassVar[str] = "Resend"
    default_base_url: ClassVar[str] = "https://api.resend.com"

    def build(self, parts: Parts) -> Request:
        headers = {"Content-Type": "application/json"}
        if parts.message_id:
            headers["Idempotency-Key"] = parts.message_id[:256]
        return Request("POST", "/emails", headers, json_body(resend_payload(parts)))

    #: "Send Batch Emails": up to 100 messages per ``POST /emails/batch``, without
    #: attachments or scheduled_at (those go one by one).
    batch_limit: ClassVar[int] = 100

    def batchable(self, parts: Parts) -> bool:
        return not parts.attachments and parts.extras.send_at is None

    def build_batch(self, items: list[Parts]) -> Request:
        headers = {"Content-Type": "application/json"}
        ids = [p.message_id for p in items]
        if all(ids):
            digest = hashlib.sha256("\n".join(str(i) for i in ids).encode()).hexdigest()
            headers["Idempotency-Key"] = f"batch-{digest}"
        return Request(
            "POST", "/emails/batch", headers, json_body([resend_payload(p) for p in items])
        )

    def batch_results(self, body: Any, count: int) -> list[tuple[Verdict, str | None]] | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != count:
            return None
        return [
            (
                Verdict("accepted", 200, "OK"),
                str(d["id"]) if isinstance(d, dict) and "id" in d else None,
            )
            for d in data
        ]

    def judge(self, status: int, headers: Any, body: Any, text: str) -> Verdict:
        verdict = super().judge(status, headers, body, text)
        name = body.get("name") if isinstance(body, dict) else None
        # "Idempotency Keys", possible responses: 409 invalid_idempotent_request (the key
        # was used with another payload: "retrying this request is useless") is permanent;
        # 409 concurrent_idempotent_requests (the first request with this key is still in
        # progress: "safe to retry later") stays retryable, as every other 409 does.
        if name == "invalid_idempotent_request":
            return Verdict("permanent", status, verdict.text)
        if name == "concurrent_idempotent_requests":
            return Verdict("retryable", status, verdict.text, verdict.retry_after)
        return verdict

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        return str(body["id"]) if isinstance(body, dict) and "id" in body else None


EmailBackend = ResendBackend
