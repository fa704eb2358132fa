"""Postmark: ``POST /email`` and ``POST /email/withTemplate`` of the Postmark API.

Addresses go as comma-separated strings (To, Cc, Bcc, ReplyTo); TextBody / HtmlBody;
custom headers and the Message-ID as ``Headers`` [{Name, Value}]; attachments with
``ContentID`` ("cid:...") for inline images. Extras: one tag -> ``Tag`` (Postmark takes
only one), metadata -> ``Metadata``, track_opens -> ``TrackOpens``, track_clicks ->
``TrackLinks``, stream -> ``MessageStream``, template_id/template_data -> the template
endpoint. Postmark has no scheduled send and no idempotency key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, UnsupportedFeature, Verdict, classify

__all__ = ["EmailBackend", "PostmarkBackend", "postmark_payload"]

#: Postmark ErrorCodes that are the mailer's problem, not the message's (API overview,
#: "Error codes"): 10 bad or missing token, 412/413 account cannot send.
_MAILER_CODES = frozenset({10, 412, 413})


def postmark_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body for ``parts`` (``/email``, or ``/email/withTemplate`` with a template)."""
    extras = parts.extras
    payload: dict[str, Any] = {"From": parts.from_email, "To": ", ".join(parts.to)}
    if not parts.to:
        raise UnsupportedFeature("Postmark", "a message without To recipients")
    if parts.cc:
        payload["Cc"] = ", ".join(parts.cc)
    if parts.bcc:
        payload["Bcc"] = ", ".join(parts.bcc)
    if parts.reply_to:
        payload["ReplyTo"] = ", ".join(parts.reply_to)
    if extras.template_id is None:
        payload["Subject"] = parts.subject
        if parts.text:
            payload["TextBody"] = parts.text
        if parts.html:
            payload["HtmlBody"] = parts.html
        if not parts.text and not parts.html:
            payload["TextBody"] = " "  # Postmark requires a body
    else:
        key = "TemplateId" if extras.template_id.isdigit() else "TemplateAlias"
        payload[key] = int(extras.template_id) if key == "TemplateId" else extras.template_id
        payload["TemplateModel"] = dict(extras.template_data or {})
    headers = [{"Name": k, "Value": v} for k, v in parts.headers.items()]
    if parts.message_id:
        headers.append({"Name": "Message-ID", "Value": parts.message_id})
    if headers:
        payload["Headers"] = headers
    if parts.attachments:
        items = []
        for a in parts.attachments:
            item = {
                "Name": a.filename or ("inline" if a.content_id else "attachment"),
                "Content": a.b64,
                "ContentType": a.mimetype,
            }
            if a.content_id:
                item["ContentID"] = f"cid:{a.content_id}"
            items.append(item)
        payload["Attachments"] = items
    if len(extras.tags) > 1:
        raise UnsupportedFeature("Postmark", "more than one tag (Postmark takes one Tag)")
    if extras.tags:
        payload["Tag"] = extras.tags[0]
    if extras.metadata:
        payload["Metadata"] = {k: str(v) for k, v in extras.metadata.items()}
    if extras.track_opens is not None:
        payload["TrackOpens"] = extras.track_opens
    if extras.track_clicks is not None:
        payload["TrackLinks"] = "HtmlAndText" if extras.track_clicks else "None"
    if extras.stream is not None:
        payload["MessageStream"] = extras.stream
    if extras.send_at is not None:
        raise UnsupportedFeature("Postmark", "a scheduled send (send_at)")
    return payload


class PostmarkBackend(HTTPBackend):
    """Send through Postmark's ``POST /email``; OPTIONS as :class:`HTTPBackend`
    (``api_key`` is the Server API token)."""

    provider: ClassVar[str] = "Postmark"
    default_base_url: ClassVar[str] = "https://api.postmarkapp.com"

    def auth_headers(self) -> dict[str, str]:
        return {"X-Postmark-Server-Token": self.api_key}

    def build(self, parts: Parts) -> Request:
        payload = postmark_payload(parts)
        path = "/email/withTemplate" if parts.extras.template_id is not None else "/email"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return Request("POST", path, headers, json_body(payload))

    #: "Send batch emails": up to 500 messages per ``POST /email/batch``.
    batch_limit: ClassVar[int] = 500

    def batchable(self, parts: Parts) -> bool:
        return parts.extras.template_id is None

    def build_batch(self, items: list[Parts]) -> Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        body = json_body([postmark_payload(parts) for parts in items])
        return Request("POST", "/email/batch", headers, body)

    def batch_results(self, body: Any, count: int) -> list[tuple[Verdict, str | None]] | None:
        if not isinstance(body, list) or len(body) != count:
            return None
        results: list[tuple[Verdict, str | None]] = []
        for entry in body:
            if not isinstance(entry, dict):
                return None
            code = entry.get("ErrorCode")
            text = str(entry.get("Message", ""))
            if code == 0:
                results.append((Verdict("accepted", 200, text), str(entry.get("MessageID"))))
            elif code in _MAILER_CODES:
                results.append((Verdict("unauthorized", 200, f"ErrorCode {code}: {text}"), None))
            elif code == 429:
                results.append((Verdict("retryable", 200, f"ErrorCode {code}: {text}"), None))
            else:
                results.append((Verdict("permanent", 200, f"ErrorCode {code}: {text}"), None))
        return results

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        return str(body["MessageID"]) if isinstance(body, dict) and "MessageID" in body else None

    def judge(self, status: int, headers: Any, body: Any, text: str) -> Verdict:
        verdict = classify(status, headers, text)
        code = body.get("ErrorCode") if isinstance(body, dict) else None
        message = self.error_text(status, body, text)
        if verdict.kind == "accepted":
            if code not in (None, 0):  # a 200 that still refuses (documented shape)
                return Verdict("permanent", status, f"ErrorCode {code}: {message}")
            return verdict
        if code is not None:
            message = f"ErrorCode {code}: {message}"
        if code in _MAILER_CODES:
            return Verdict("unauthorized", status, message)
        return Verdict(verdict.kind, status, message, verdict.retry_after)


EmailBackend = PostmarkBackend
