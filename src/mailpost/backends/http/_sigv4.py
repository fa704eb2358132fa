"""AWS Signature Version 4 (header form), pure: hmac + hashlib, no I/O.

Follows AWS's documented algorithm: a canonical request (method, URI, sorted query,
lower-cased sorted headers, signed header list, payload SHA-256), a string to sign with
the credential scope ``date/region/service/aws4_request``, and a signing key derived by
HMAC-chaining ``"AWS4" + secret`` through date, region, service and ``aws4_request``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["sign"]

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """The canonical request text and the signed-headers list."""
    names = sorted(headers, key=str.lower)
    canonical_headers = "".join(f"{n.lower()}:{' '.join(str(headers[n]).split())}\n" for n in names)
    signed = ";".join(n.lower() for n in names)
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, _, v in (p.partition("=") for p in query.split("&") if p)
    )
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    uri = quote(path or "/", safe="/-_.~")
    text = "\n".join(
        [method.upper(), uri, canonical_query, canonical_headers, signed, payload_hash]
    )
    return text, signed


def sign(
    *,
    method: str,
    path: str,
    query: str = "",
    headers: Mapping[str, str],
    payload: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    amz_date: str,
) -> str:
    """The ``Authorization`` header value; ``headers`` must include host and x-amz-date."""
    payload_hash = hashlib.sha256(payload).hexdigest()
    request, signed = canonical_request(method, path, query, headers, payload_hash)
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(request.encode("utf-8")).hexdigest()]
    )
    signature = hmac.new(
        signing_key(secret_key, date, region, service), to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
