"""Local fake servers for the HTTP email APIs, on 127.0.0.1, started by the tests.

Each fake implements the documented request/response shape of one provider's send
endpoint (auth header, required fields, limits, success and error bodies), cited per
handler, and never looks at mailpost's code. Faults are injectable in order:
``fake.faults.append(Fault("429", retry_after=3))`` etc. Every request is kept in
``fake.requests``; every accepted message in ``fake.accepted`` (as the provider would
deliver it: rebuilt MIME bytes + envelope), for the shared backend contract.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage as StdlibMessage
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from backend_contract import Delivered

__all__ = ["FAKES", "FakeProvider", "Fault", "start_fake"]

API_KEY = "test-key-123"


@dataclass
class Fault:
    """One injected fault, used by the next request: "429", "500", "slow", "reset",
    "malformed" (200 with a body that is not JSON)."""

    kind: str
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeProvider:
    name: str
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    accepted: list[Delivered] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    idempotency: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)  # keys of requests still being served
    lock: threading.Lock = field(default_factory=threading.Lock)


def _mime(
    sender: str, to: list[str], cc: list[str], subject: str, text: str | None, html: str | None
) -> bytes:
    """The message a provider would build from the JSON fields (no Bcc header)."""
    msg = StdlibMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg.set_content(text or "")
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def _addrs(values: list[str]) -> list[str]:
    return [a for _, a in getaddresses(values)]


# -- per-provider handlers: (status, headers, body bytes) --------------------------------

Reply = tuple[int, dict[str, str], bytes]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def resend(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # Resend API reference, "Send Email" (POST /emails) and "Errors": Bearer key;
    # missing key 401 missing_api_key, wrong key 403 invalid_api_key; from/to/subject
    # required (422 missing_required_field); at most 50 recipients in "to"; success 200
    # {"id": ...}. "Idempotency Keys": same key + same body -> same reply, no resend; same
    # key + different body -> 409 invalid_idempotent_request; same key while the first
    # request is still in progress -> 409 concurrent_idempotent_requests.
    if path not in ("/emails", "/emails/batch"):
        return _json(404, {"statusCode": 404, "name": "not_found", "message": "Not found"})
    auth = headers.get("authorization", "")
    if not auth:
        return _json(
            401,
            {
                "statusCode": 401,
                "name": "missing_api_key",
                "message": "Missing API key in the authorization header.",
            },
        )
    if auth != f"Bearer {API_KEY}":
        return _json(
            403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"}
        )
    try:
        body = json.loads(raw)
    except ValueError:
        return _json(
            422, {"statusCode": 422, "name": "validation_error", "message": "Invalid JSON"}
        )
    if path == "/emails/batch":
        return _resend_batch(fake, headers, raw, body)
    return _resend_one(fake, headers, raw, body)


def _resend_batch(fake: FakeProvider, headers: dict[str, str], raw: bytes, body: Any) -> Reply:
    # "Send Batch Emails" (POST /emails/batch): a JSON array of up to 100 emails, without
    # attachments or scheduled_at; the whole batch is validated first (strict mode), and
    # the reply is 200 {"data": [{"id": ...}, ...]} in request order.
    def invalid(message: str) -> Reply:
        return _json(422, {"statusCode": 422, "name": "validation_error", "message": message})

    if not isinstance(body, list) or not 1 <= len(body) <= 100:
        return invalid("The batch must hold between 1 and 100 emails.")
    for email in body:
        if "attachments" in email or "scheduled_at" in email:
            return invalid("Attachments and scheduled_at are not supported in batch emails.")
    replies = []
    for email in body:
        status, _, reply = _resend_one(fake, {}, json.dumps(email).encode(), email)
        if status != 200:
            return status, {"Content-Type": "application/json"}, reply
        replies.append(json.loads(reply))
    return _json(200, {"data": replies})


def _resend_one(fake: FakeProvider, headers: dict[str, str], raw: bytes, body: Any) -> Reply:
    for required in ("from", "to", "subject"):
        if not body.get(required):
            return _json(
                422,
                {
                    "statusCode": 422,
                    "name": "missing_required_field",
                    "message": f"Missing `{required}` field.",
                },
            )
    to = body["to"] if isinstance(body["to"], list) else [body["to"]]
    if len(to) > 50:
        return _json(
            422,
            {
                "statusCode": 422,
                "name": "validation_error",
                "message": "Too many recipients in `to` (max 50).",
            },
        )
    key = headers.get("idempotency-key")
    if key:
        with fake.lock:
            before = fake.idempotency.get(key)
            busy = key in fake.in_flight
        if busy:
            return _json(
                409,
                {
                    "statusCode": 409,
                    "name": "concurrent_idempotent_requests",
                    "message": "Same idempotency key used while original request is still "
                    "in progress.",
                },
            )
        if before is not None:
            if before[0] != raw:
                return _json(
                    409,
                    {
                        "statusCode": 409,
                        "name": "invalid_idempotent_request",
                        "message": "Same idempotency key used with a different request payload.",
                    },
                )
            return _json(200, {"id": before[1]})
    email_id = str(uuid.uuid4())
    cc, bcc = body.get("cc", []), body.get("bcc", [])
    data = _mime(body["from"], to, cc, body["subject"], body.get("text"), body.get("html"))
    with fake.lock:
        if key:
            fake.idempotency[key] = (raw, email_id)
        fake.accepted.append(Delivered(_addrs([body["from"]])[0], _addrs(to + cc + bcc), data))
    return _json(200, {"id": email_id})


def sendgrid(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # SendGrid v3 API reference, "Mail Send" (POST /v3/mail/send): Bearer key, else 401
    # {"errors": [{"field": null, "message": ...}]}; personalizations (1..1000, each with
    # "to"), from.email, subject (unless a template) and content (each value >= 1 char,
    # text/plain first) required, 400 with {"errors": [{"field", "message", "help"}]};
    # at most 1000 recipients in total; success 202, empty body, X-Message-Id header.
    if path != "/v3/mail/send":
        return _json(404, {"errors": [{"field": None, "message": "not found"}]})
    if headers.get("authorization") != f"Bearer {API_KEY}":
        return _json(
            401,
            {
                "errors": [
                    {
                        "field": None,
                        "message": "The provided authorization "
                        "grant is invalid, expired, or revoked",
                    }
                ]
            },
        )
    try:
        body = json.loads(raw)
    except ValueError:
        return _json(400, {"errors": [{"field": None, "message": "Bad Request"}]})

    def bad(field_name: str, message: str) -> Reply:
        return _json(400, {"errors": [{"field": field_name, "message": message, "help": None}]})

    persons = body.get("personalizations")
    if not isinstance(persons, list) or not 1 <= len(persons) <= 1000:
        return bad(
            "personalizations",
            "The personalizations field is required and must have at least one personalization.",
        )
    if not all(p.get("to") for p in persons):
        return bad(
            "personalizations.0.to",
            "The to array is required for all personalization "
            "objects, and must have at least one email object with a valid email "
            "address.",
        )
    if not (body.get("from") or {}).get("email"):
        return bad("from.email", "The from object must be provided for every email send.")
    if not body.get("subject") and "template_id" not in body:
        return bad("subject", "The subject is required.")
    content = body.get("content")
    if "template_id" not in body:
        if not content or not all(c.get("value") for c in content):
            return bad(
                "content",
                "Unless a valid template_id is provided, the content parameter is required.",
            )
        if content[0]["type"] != "text/plain" and any(c["type"] == "text/plain" for c in content):
            return bad("content.0.type", "The text/plain content type must be first.")
    total = sum(len(p.get(k, [])) for p in persons for k in ("to", "cc", "bcc"))
    if total > 1000:
        return bad("personalizations", "The total number of recipients must be <= 1000.")
    message_id = uuid.uuid4().hex[:22]
    for p in persons:
        to = [a["email"] for a in p["to"]]
        cc = [a["email"] for a in p.get("cc", [])]
        bcc = [a["email"] for a in p.get("bcc", [])]
        text = next((c["value"] for c in content or [] if c["type"] == "text/plain"), None)
        html = next((c["value"] for c in content or [] if c["type"] == "text/html"), None)
        data = _mime(body["from"]["email"], to, cc, body.get("subject", ""), text, html)
        with fake.lock:
            fake.accepted.append(Delivered(body["from"]["email"], to + cc + bcc, data))
    return 202, {"X-Message-Id": message_id}, b""


def postmark(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # Postmark API, "Email API: Send a single email" (POST /email) and "Overview: Error
    # codes": X-Postmark-Server-Token header, wrong or missing -> 401 ErrorCode 10; From,
    # To and a body (TextBody or HtmlBody) required, at most 50 recipients over To, Cc and
    # Bcc -> 422 ErrorCode 300 "Invalid email request"; success 200 {"To", "SubmittedAt",
    # "MessageID", "ErrorCode": 0, "Message": "OK"}.
    if path not in ("/email", "/email/withTemplate", "/email/batch"):
        return _json(404, {"ErrorCode": 404, "Message": "Not found"})
    if headers.get("x-postmark-server-token") != API_KEY:
        return _json(
            401,
            {
                "ErrorCode": 10,
                "Message": "The Server Token you provided in the "
                "X-Postmark-Server-Token request header was invalid.",
            },
        )
    try:
        body = json.loads(raw)
    except ValueError:
        return _json(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
    if path == "/email/batch":
        # "Send batch emails" (POST /email/batch): an array of up to 500 messages; the reply
        # is 200 with one {"ErrorCode", "Message", "MessageID", "To"} per message, in order,
        # each message accepted or refused on its own.
        if not isinstance(body, list) or len(body) > 500:
            return _json(422, {"ErrorCode": 410, "Message": "Too many batch messages."})
        return _json(200, [json.loads(_postmark_one(fake, path, m)[2]) for m in body])
    return _postmark_one(fake, path, body)


def _postmark_one(fake: FakeProvider, path: str, body: Any) -> Reply:
    def invalid(message: str) -> Reply:
        return _json(422, {"ErrorCode": 300, "Message": message})

    if not body.get("From"):
        return invalid("Invalid 'From' address: ''.")
    if not body.get("To"):
        return invalid("Zero recipients specified")
    template = path.endswith("withTemplate")
    if not template and not (body.get("TextBody") or body.get("HtmlBody")):
        return invalid("Provide either email TextBody or HtmlBody or both.")
    to = [a.strip() for a in body["To"].split(",")]
    cc = [a.strip() for a in body.get("Cc", "").split(",") if a.strip()]
    bcc = [a.strip() for a in body.get("Bcc", "").split(",") if a.strip()]
    if len(to) + len(cc) + len(bcc) > 50:
        return invalid("Maximum of 50 recipients allowed.")
    for a in body.get("Attachments", []):
        if not a.get("Name") or "Content" not in a:
            return invalid("Attachment Name and Content are required.")
    data = _mime(
        body["From"], to, cc, body.get("Subject", ""), body.get("TextBody"), body.get("HtmlBody")
    )
    message_id = str(uuid.uuid4())
    with fake.lock:
        fake.accepted.append(Delivered(_addrs([body["From"]])[0], _addrs(to + cc + bcc), data))
    return _json(
        200,
        {
            "To": body["To"],
            "SubmittedAt": "2026-12-06T12:00:00.0000000-05:00",
            "MessageID": message_id,
            "ErrorCode": 0,
            "Message": "OK",
        },
    )


def brevo(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # Brevo API v3 reference, "Send a transactional email" (POST /v3/smtp/email): "api-key"
    # header, else 401 {"code": "unauthorized", "message": "Key not found"}; sender and
    # subject required without templateId, and htmlContent or textContent; "to" required;
    # at most 99 recipients per message version; errors 400 {"code": "missing_parameter" |
    # "invalid_parameter", "message"}; success 201 {"messageId": "<...>"}. Changelog "Email
    # API now supports idempotency": headers.idempotencyKey -> processed once.
    if path != "/v3/smtp/email":
        return _json(404, {"code": "not_found", "message": "Not found"})
    if headers.get("api-key") != API_KEY:
        return _json(401, {"code": "unauthorized", "message": "Key not found"})
    try:
        body = json.loads(raw)
    except ValueError:
        return _json(400, {"code": "bad_request", "message": "Input must be a valid JSON object"})

    def bad(code: str, message: str) -> Reply:
        return _json(400, {"code": code, "message": message})

    if not body.get("to"):
        return bad("missing_parameter", "to is missing")
    if "templateId" not in body:
        if not (body.get("sender") or {}).get("email"):
            return bad("missing_parameter", "sender is missing")
        if not body.get("subject"):
            return bad("missing_parameter", "subject is missing")
        if not (body.get("htmlContent") or body.get("textContent")):
            return bad("missing_parameter", "htmlContent or textContent is missing")
    to = [a["email"] for a in body["to"]]
    cc = [a["email"] for a in body.get("cc", [])]
    bcc = [a["email"] for a in body.get("bcc", [])]
    if len(to) + len(cc) + len(bcc) > 99:
        return bad("invalid_parameter", "Too many recipients: at most 99 per message")
    key = (body.get("headers") or {}).get("idempotencyKey")
    if key:
        with fake.lock:
            before = fake.idempotency.get(key)
        if before is not None:
            return _json(201, {"messageId": before[1]})
    message_id = f"<{uuid.uuid4().hex}@smtp-relay.mailin.fr>"
    data = _mime(
        body["sender"]["email"],
        to,
        cc,
        body.get("subject", ""),
        body.get("textContent"),
        body.get("htmlContent"),
    )
    with fake.lock:
        if key:
            fake.idempotency[key] = (raw, message_id)
        fake.accepted.append(Delivered(body["sender"]["email"], to + cc + bcc, data))
    return _json(201, {"messageId": message_id})


def sequenzy(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # Sequenzy API reference (docs.sequenzy.com): "Introduction": base URL
    # https://api.sequenzy.com/api/v1 (/v1 still accepted as an alias), Bearer key, 401 for
    # a missing or invalid key, errors {"success": false, "error": "..."} with 400 for
    # validation. "Send Transactional Email" (POST /transactional/send): "to" required, a
    # string or up to 50 addresses, likewise "cc" and "bcc"; "slug" or "subject" + "body"
    # (HTML); "from" / "replyTo" strings "Name <email>"; "attachments" of {"filename"
    # (required), "content" (base64) or "path", not both}, 40 MB in all; success 200
    # {"success": true, "jobId": ..., "to": ...}.
    if path not in ("/api/v1/transactional/send", "/v1/transactional/send"):
        return _json(404, {"success": False, "error": "Not found"})
    auth = headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        return _json(401, {"success": False, "error": "Missing API key"})
    if auth != f"Bearer {API_KEY}":
        return _json(401, {"success": False, "error": "Invalid API key"})

    def bad(message: str) -> Reply:
        return _json(400, {"success": False, "error": message})

    try:
        body = json.loads(raw)
    except ValueError:
        return bad("Invalid JSON body")
    lists: dict[str, list[str]] = {}
    for name in ("to", "cc", "bcc"):
        value = body.get(name, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return bad(f"{name} must be an email address or a list of them")
        if len(value) > 50:
            return bad(f"{name} accepts at most 50 recipients")
        lists[name] = value
    if not lists["to"]:
        return bad("to is required")
    if not body.get("slug") and not (body.get("subject") and body.get("body")):
        return bad("subject and body are required when no slug is given")
    total = 0
    for attachment in body.get("attachments", []):
        if not attachment.get("filename"):
            return bad("attachments[].filename is required")
        if ("content" in attachment) == ("path" in attachment):
            return bad("attachments[] needs either content or path, not both")
        try:
            total += len(base64.b64decode(attachment.get("content", ""), validate=True))
        except ValueError:
            return bad("attachments[].content must be base64")
    if total > 40 * 1024 * 1024:
        return bad("attachments exceed 40MB in total")
    sender = body.get("from") or "account-sender@example.com"
    data = _mime(
        sender, lists["to"], lists["cc"], body.get("subject", body.get("slug", "")), None,
        body.get("body", ""),
    )  # fmt: skip
    recipients = _addrs(lists["to"] + lists["cc"] + lists["bcc"])
    with fake.lock:
        fake.accepted.append(Delivered(_addrs([sender])[0], recipients, data))
    return _json(200, {"success": True, "jobId": f"job_{uuid.uuid4().hex[:12]}", "to": body["to"]})


MAILGUN_DOMAIN = "mg.example.com"


def mailgun(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # Mailgun API v3 reference, "Messages: Send an email in MIME format" (POST
    # /v3/{domain_name}/messages.mime): HTTP Basic auth user "api" + key, else 401 with the
    # plain-text body "Forbidden"; multipart/form-data with "to" (repeatable) and the
    # "message" file, both required -> 400 {"message": ...}; unknown domain -> 404;
    # at most 1000 recipients; success 200 {"id": "<...>", "message": "Queued. Thank you."}.
    import email.parser
    import email.policy

    expected = "Basic " + base64.b64encode(f"api:{API_KEY}".encode()).decode()
    if headers.get("authorization") != expected:
        return 401, {"Content-Type": "text/plain"}, b"Forbidden"
    if path != f"/v3/{MAILGUN_DOMAIN}/messages.mime":
        return _json(404, {"message": f"Domain not found: {path.split('/')[2]}"})
    head = f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode()
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    to: list[str] = []
    message = None
    for part in form.iter_parts() if form.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name == "to":
            to.append(payload.decode())
        elif name == "message":
            message = payload if isinstance(payload, bytes) else None
    if not to:
        return _json(400, {"message": "'to' parameter is missing"})
    if message is None:
        return _json(400, {"message": "'message' parameter is missing"})
    if len(to) > 1000:
        return _json(400, {"message": "Too many recipients: at most 1000"})
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(message)
    sender = _addrs([str(parsed["From"])])[0]
    with fake.lock:
        fake.accepted.append(Delivered(sender, to, message))
    return _json(
        200, {"id": f"<{uuid.uuid4().hex}@{MAILGUN_DOMAIN}>", "message": "Queued. Thank you."}
    )


SES_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _sigv4_expected(
    headers: dict[str, str], path: str, raw: bytes, credential: str, signed: str
) -> str:
    # AWS General Reference, "Signature Version 4 signing process": canonical request ->
    # string to sign -> HMAC chain of the secret over date, region, service, aws4_request.
    import hashlib
    import hmac

    _, date, region, service, _ = credential.split("/")
    names = signed.split(";")
    canon = "\n".join(
        [
            "POST",
            path,
            "",
            "".join(f"{n}:{headers.get(n, '').strip()}\n" for n in names),
            signed,
            hashlib.sha256(raw).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            headers.get("x-amz-date", ""),
            scope,
            hashlib.sha256(canon.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{SES_SECRET}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def ses(fake: FakeProvider, path: str, headers: dict[str, str], raw: bytes) -> Reply:
    # Amazon SES API v2 reference, "SendEmail" (POST /v2/email/outbound-emails) and "Common
    # Errors": SigV4 Authorization (service "ses"), a bad signature or unknown key -> 403
    # with x-amzn-ErrorType; Content required, Raw.Data base64 of the whole message; at
    # most 50 recipients -> 400 MessageRejected; success 200 {"MessageId": ...}.
    def error(status: int, kind: str, message: str) -> Reply:
        return _json(status, {"message": message}, {"x-amzn-ErrorType": kind})

    if path != "/v2/email/outbound-emails":
        return error(404, "NotFoundException", "Not found")
    auth = headers.get("authorization", "")
    try:
        fields = dict(p.strip().split("=", 1) for p in auth.split(" ", 1)[1].split(","))
        credential, signed, signature = (
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
        )
    except (IndexError, KeyError, ValueError):
        return error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if not credential.startswith(f"{API_KEY}/"):
        return error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    if signature != _sigv4_expected(headers, path, raw, credential, signed):
        return error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    try:
        body = json.loads(raw)
        data = base64.b64decode(body["Content"]["Raw"]["Data"], validate=True)
    except (ValueError, KeyError, TypeError):
        return error(400, "BadRequestException", "Content.Raw.Data is required (base64).")
    dest = body.get("Destination", {})
    recipients = [
        *dest.get("ToAddresses", []),
        *dest.get("CcAddresses", []),
        *dest.get("BccAddresses", []),
    ]
    if len(recipients) > 50:
        return error(400, "MessageRejected", "Too many recipients: at most 50 per message.")
    sender = _addrs([body.get("FromEmailAddress", "")])[0]
    with fake.lock:
        fake.accepted.append(Delivered(sender, _addrs(recipients), data))
    return _json(200, {"MessageId": f"0100{uuid.uuid4().hex}-000000"})


FAKES = {
    "mailgun": mailgun,
    "ses": ses,
    "resend": resend,
    "sendgrid": sendgrid,
    "postmark": postmark,
    "brevo": brevo,
    "sequenzy": sequenzy,
}


def _handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    handle = FAKES[fake.name]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every reply.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            with fake.lock:
                fake.requests.append(Seen(self.path, headers, parsed))
                fault = fake.faults.pop(0) if fake.faults else None
            if fault is not None:
                if fault.kind == "reset":
                    # RST instead of a reply: SO_LINGER with a zero timeout.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault.kind == "slow":
                    # The request is in progress while it sleeps: one with the same
                    # idempotency key arriving meanwhile sees it (Resend answers 409).
                    key = headers.get("idempotency-key")
                    with fake.lock:
                        if key:
                            fake.in_flight.add(key)
                    time.sleep(fault.delay)
                    with fake.lock:
                        fake.in_flight.discard(key or "")
                elif fault.kind == "429":
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._reply(
                        *_json(
                            429,
                            {"message": "Too many requests", "statusCode": 429, "ErrorCode": 429},
                            extra,
                        )
                    )
                    return
                elif fault.kind == "500":
                    self._reply(
                        *_json(
                            500,
                            {
                                "message": "Internal server error",
                                "statusCode": 500,
                                "ErrorCode": 500,
                            },
                        )
                    )
                    return
                elif fault.kind == "malformed":
                    self._reply(200, {"Content-Type": "application/json"}, b"{not json")
                    return
            self._reply(*handle(fake, self.path, headers, raw))

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_fake(
    name: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[FakeProvider, _Server]:
    """Start the fake for provider ``name`` on a free loopback port (HTTPS with
    ``ssl_context``, a server-side context holding the certificate)."""
    fake = FakeProvider(name)
    server = _Server(("127.0.0.1", 0), _handler(fake))
    scheme = "http"
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    fake.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return fake, server
