"""Amazon SES API v2: ``SendEmail`` (``POST /v2/email/outbound-emails``) with raw content,
signed with AWS Signature Version 4 (service ``ses``).

The message goes as its raw RFC 5322 bytes (``Content.Raw.Data``, base64), so every part
(Cc, Reply-To, custom headers, the Message-ID, text + HTML, attachments, inline images) is
delivered exactly as composed; ``Destination`` lists every envelope recipient, Bcc included.
Extras: tags and metadata -> ``EmailTags``, stream -> ``ConfigurationSetName``; the rest
raise (SES has no scheduled send, and templates need the Template content form).
"""

from __future__ import annotations

import base64
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from mailpost.backends.http._base import HTTPBackend, Request, json_body
from mailpost.backends.http._parts import Parts, UnsupportedFeature, Verdict, classify
from mailpost.backends.http._sigv4 import sign

__all__ = ["EmailBackend", "SESBackend", "ses_payload"]

#: x-amzn-ErrorType values that are the account's problem, not the message's
#: (SES API v2 reference, SendEmail "Errors").
_MAILER_ERRORS = frozenset(
    {"AccountSuspendedException", "SendingPausedException", "AccessDeniedException"}
)
_RETRY_ERRORS = frozenset({"TooManyRequestsException", "LimitExceededException"})


def ses_payload(parts: Parts) -> dict[str, Any]:
    """The JSON body of SendEmail for ``parts`` (pure)."""
    extras = parts.extras
    for feature, present in (
        ("a scheduled send (send_at)", extras.send_at is not None),
        ("a stored template with raw content", extras.template_id is not None),
        ("per-message tracking switches", extras.track_opens is not None
         or extras.track_clicks is not None),
    ):  # fmt: skip
        if present:
            raise UnsupportedFeature("Amazon SES", feature)
    payload: dict[str, Any] = {
        "FromEmailAddress": parts.from_email,
        "Destination": {"ToAddresses": parts.recipients},
        "Content": {"Raw": {"Data": base64.b64encode(parts.raw).decode("ascii")}},
    }
    tags = [{"Name": t, "Value": "true"} for t in extras.tags]
    tags += [{"Name": k, "Value": str(v)} for k, v in extras.metadata.items()]
    if tags:
        payload["EmailTags"] = tags
    if extras.stream is not None:
        payload["ConfigurationSetName"] = extras.stream
    return payload


class SESBackend(HTTPBackend):
    """Send through Amazon SES v2. OPTIONS: ``access_key_id``, ``secret_access_key``,
    ``region`` (default ``us-east-1``), ``session_token`` (temporary credentials), and the
    shared ones (``base_url`` defaults to ``https://email.<region>.amazonaws.com``)."""

    provider: ClassVar[str] = "Amazon SES"
    service: ClassVar[str] = "ses"
    key_option: ClassVar[str] = "access_key_id"

    def __init__(
        self,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        *,
        region: str = "us-east-1",
        session_token: str | None = None,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        url = base_url or f"https://email.{region}.amazonaws.com"
        super().__init__(api_key=access_key_id or "", base_url=url, **kwargs)
        if not isinstance(region, str) or not region.replace("-", "").isalnum():
            raise self.invalid(f"option 'region' must be an AWS region name, not {region!r}")
        if not isinstance(secret_access_key, str) or not secret_access_key:
            raise self.invalid("option 'secret_access_key' is required for Amazon SES")
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.region = region
        self._host = urlsplit(self.base_url).netloc

    def auth_headers(self) -> dict[str, str]:
        return {}  # signed per request in build()

    def build(self, parts: Parts) -> Request:
        body = json_body(ses_payload(parts))
        path = "/v2/email/outbound-emails"
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        headers = {
            "Content-Type": "application/json",
            "Host": self._host,
            "X-Amz-Date": amz_date,
        }
        if self.session_token:
            headers["X-Amz-Security-Token"] = self.session_token
        headers["Authorization"] = sign(
            method="POST",
            path=path,
            headers=headers,
            payload=body,
            access_key=self.api_key,
            secret_key=self.secret_access_key,
            region=self.region,
            service=self.service,
            amz_date=amz_date,
        )
        return Request("POST", path, headers, body)

    def message_id_from(self, status: int, headers: Any, body: Any) -> str | None:
        return str(body["MessageId"]) if isinstance(body, dict) and "MessageId" in body else None

    def judge(self, status: int, headers: Any, body: Any, text: str) -> Verdict:
        verdict = classify(status, headers, text)
        if verdict.kind == "accepted":
            return verdict
        kind = str(headers.get("x-amzn-errortype", "")).split(":")[0]
        message = (
            f"{kind}: {self.error_text(status, body, text)}"
            if kind
            else self.error_text(status, body, text)
        )
        if kind in _MAILER_ERRORS:
            return Verdict("unauthorized", status, message)
        if kind in _RETRY_ERRORS:
            return Verdict("retryable", status, message, verdict.retry_after)
        return Verdict(verdict.kind, status, message, verdict.retry_after)


EmailBackend = SESBackend
