"""What every provider's webhook parser shares: the configuration, the rejection, and the
readers that turn loosely typed JSON values into the fields of a :class:`DeliveryEvent`."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mailpost.events.model import WebhookRejected

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_TOLERANCE = 300.0

#: ``loader(url) -> PEM bytes`` of the certificate at an SNS ``SigningCertURL``.
CertificateLoader = Callable[[str], bytes]


@dataclass(frozen=True, slots=True, repr=False)
class WebhookConfig:
    """How to authenticate one provider's webhook requests.

    Set what the provider uses: ``secret`` (Resend, Sequenzy: ``whsec_...``; Mailgun: the
    HTTP webhook signing key), ``public_key`` (SendGrid verification key), ``username`` and
    ``password`` (Postmark, Brevo basic auth), ``token`` (Brevo bearer token; Postmark: value
    expected in ``token_header``), ``certificate_loader`` (SES). ``repr`` never shows secrets.
    """

    secret: str | bytes | None = None
    public_key: str | bytes | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    token_header: str = "authorization"
    certificate_loader: CertificateLoader | None = None
    tolerance: float = DEFAULT_TOLERANCE
    max_body: int = DEFAULT_MAX_BODY

    def __repr__(self) -> str:
        present = [
            n
            for n in ("secret", "public_key", "username", "password", "token")
            if getattr(self, n) is not None
        ]
        return f"WebhookConfig(configured={present}, tolerance={self.tolerance})"


def _reject(provider: str, problem: str, status: int = 400) -> WebhookRejected:
    return WebhookRejected(
        f"{provider} webhook rejected: {problem}", status=status, provider=provider
    )


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for k, v in items:
        key = k.decode("latin-1") if isinstance(k, bytes) else str(k)
        val = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        out[key.lower()] = val
    return out


def _json(provider: str, body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _reject(provider, f"body is not JSON ({type(exc).__name__})") from None


def _fresh(provider: str, stamp: str, cfg: WebhookConfig, now: float) -> None:
    try:
        when = float(stamp)
    except ValueError:
        raise _reject(provider, "timestamp is not a number", 401) from None
    if when != when or abs(now - when) > cfg.tolerance:  # NaN, or outside the replay window
        raise _reject(provider, "timestamp outside the replay window (stale or replayed)", 400)


def _when(value: Any) -> datetime:
    """A provider timestamp (epoch seconds or ISO 8601) as aware UTC; now if absent/bad."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), timezone.utc)
        if isinstance(value, str) and value:
            text = value.strip().replace("Z", "+00:00")
            try:
                return datetime.fromtimestamp(float(text), timezone.utc)
            except ValueError:
                pass
            dt = datetime.fromisoformat(text)
            return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    except (ValueError, TypeError, OverflowError, OSError):
        pass
    return datetime.now(timezone.utc)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _msgid(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().strip("<>") or None


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 200 <= value < 600:
        return value
    if isinstance(value, str):
        m = re.match(r"\s*([245]\d\d)\b", value)
        if m:
            return int(m.group(1))
    return None


def _status(text: str) -> str | None:
    m = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", text)
    return m.group(1) if m else None


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (optional sub-objects)."""
    return value if isinstance(value, dict) else {}


def _dict(provider: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _reject(provider, f"{what} is not a JSON object")
    return value


def _basic_ok(headers: dict[str, str], cfg: WebhookConfig) -> bool:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic" or cfg.username is None or cfg.password is None:
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{cfg.username}:{cfg.password}".encode()
    return hmac.compare_digest(decoded, expected)


def _need_crypto(provider: str) -> Any:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        from mailpost.exceptions import MissingDependency

        raise MissingDependency(
            f'verifying {provider} webhooks needs cryptography: pip install "mailpost[events]"'
        ) from exc


def _recipients(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []
