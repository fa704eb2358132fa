"""Mailer URLs: a one-string form of a ``MAILERS`` entry, handy in environment variables.

::

    smtp://user:pass@smtp.example.com:587?use_tls=true&timeout=10
    smtps://user:pass@smtp.example.com          (implicit TLS: use_ssl=True)
    console://
    file:///var/mail/outgoing                   (file_path=/var/mail/outgoing)
    locmem://
    dummy://
    failover://primary,backup                   (mailers=["primary", "backup"])
    round-robin://a,b?weights=3,1               (mailers=["a", "b"], weights=[3, 1])
    capture://mail.sqlite3                      (capture store for mailpost preview)

User name and password are percent-decoded (write ``@`` as ``%40``); IPv6 hosts go in
brackets (``smtp://[::1]:1025``). Query values are typed: booleans accept
``true/false/1/0/yes/no``, ``timeout`` is a number of seconds. Errors name the mailer alias
and the offending part, and never repeat the URL, so a password cannot leak into them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mailpost.exceptions import InvalidMailer

__all__ = ["SCHEMES", "parse_mailer_url"]

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}

_SMTP_QUERY = {
    "use_tls": "bool",
    "use_ssl": "bool",
    "timeout": "float",
    "ssl_certfile": "str",
    "ssl_keyfile": "str",
    "fail_silently": "bool",
}

#: scheme -> (backend path, query options it accepts with their types)
SCHEMES: dict[str, tuple[str, dict[str, str]]] = {
    "smtp": ("mailpost.backends.smtp.EmailBackend", _SMTP_QUERY),
    "smtps": ("mailpost.backends.smtp.EmailBackend", _SMTP_QUERY),
    "console": ("mailpost.backends.console.EmailBackend", {"fail_silently": "bool"}),
    "file": ("mailpost.backends.filebased.EmailBackend", {"fail_silently": "bool"}),
    "locmem": ("mailpost.backends.locmem.EmailBackend", {}),
    "dummy": ("mailpost.backends.dummy.EmailBackend", {}),
    "failover": ("mailpost.backends.failover.EmailBackend", {"fail_silently": "bool"}),
    "round-robin": (
        "mailpost.backends.round_robin.EmailBackend",
        {"fail_silently": "bool", "weights": "ints"},
    ),
    "capture": ("mailpost.backends.capture.EmailBackend", {"fail_silently": "bool"}),
}

#: Schemes whose "host" is a comma-separated list of MAILERS aliases (composite mailers).
_ALIAS_LIST_SCHEMES = ("failover", "round-robin")
#: HTTP email APIs: ``resend://API_KEY@default`` (the provider's own base URL) or
#: ``resend://API_KEY@host:port`` (https://host:port; http:// for a loopback test server).
_HTTP_QUERY = {"timeout": "float", "max_connections": "int", "rate_limit": "float",
               "batch": "bool", "fail_silently": "bool"}  # fmt: skip
_HTTP_SCHEMES = {"resend", "sendgrid", "postmark", "brevo", "sequenzy", "mailgun"}
for _name in sorted(_HTTP_SCHEMES):
    SCHEMES[_name] = (f"mailpost.backends.{_name}.EmailBackend", _HTTP_QUERY)
SCHEMES["mailgun"] = (SCHEMES["mailgun"][0], {**_HTTP_QUERY, "domain": "str"})
#: Amazon SES v2: ``ses://ACCESS_KEY_ID:SECRET_ACCESS_KEY@us-east-1`` (the host is the region).
SCHEMES["ses"] = ("mailpost.backends.ses.EmailBackend", _HTTP_QUERY)


def parse_mailer_url(url: str, *, alias: str) -> dict[str, Any]:
    """Turn a mailer URL into a ``{"BACKEND": ..., "OPTIONS": {...}}`` entry for ``alias``."""
    label = f"MAILERS[{alias!r}]"

    def invalid(problem: str) -> InvalidMailer:
        return InvalidMailer(f"{label}: {problem}", alias=alias)

    scheme, sep, _ = url.partition("://")
    scheme = scheme.strip().lower()
    if not sep or scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        shown = f"{scheme!r}" if sep else "none"
        raise invalid(
            f"unsupported mailer URL scheme {shown}; use one of {known} "
            "or a dict with BACKEND and OPTIONS"
        )
    backend, allowed = SCHEMES[scheme]
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise invalid(f"malformed {scheme}:// URL (check the host and port)") from None
    if parts.fragment:
        raise invalid(f"{scheme}:// URLs take no #fragment")

    options: dict[str, Any] = {}
    if scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise invalid(f"{scheme}:// URL needs a host, e.g. {scheme}://smtp.example.com")
        if parts.path not in ("", "/"):
            raise invalid(f"{scheme}:// URLs take no path")
        options["host"] = parts.hostname
        if port is not None:
            options["port"] = port
        if parts.username:
            options["username"] = unquote(parts.username)
        if parts.password is not None:
            options["password"] = unquote(parts.password)
        if scheme == "smtps":
            options["use_ssl"] = True
    elif scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise invalid(
                "file:// URL must hold an absolute directory path after three slashes, "
                "e.g. file:///var/mail/outgoing"
            )
        if not parts.path:
            raise invalid("file:// URL needs a directory path, e.g. file:///var/mail/outgoing")
        options["file_path"] = unquote(parts.path)
    elif scheme in _ALIAS_LIST_SCHEMES:
        names = [unquote(n).strip() for n in parts.netloc.split(",")] if parts.netloc else []
        if not names or not all(names) or parts.path not in ("", "/"):
            raise invalid(
                f"{scheme}:// URL needs a comma-separated list of mailer aliases and no "
                f"path, e.g. {scheme}://primary,backup"
            )
        options["mailers"] = names
    elif scheme == "ses":
        if not parts.username or not parts.password or not parts.hostname:
            raise invalid("ses:// URL needs keys and a region: ses://KEY_ID:SECRET@us-east-1")
        options["access_key_id"] = unquote(parts.username)
        options["secret_access_key"] = unquote(parts.password)
        if parts.hostname != "default":
            options["region"] = parts.hostname
    elif scheme in _HTTP_SCHEMES:
        if not parts.username or not parts.hostname or parts.path not in ("", "/"):
            raise invalid(f"{scheme}:// URL needs the API key and a host: {scheme}://KEY@default")
        options["api_key"] = unquote(parts.username)
        if parts.hostname != "default":
            loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            netloc = host if port is None else f"{host}:{port}"
            options["base_url"] = f"{'http' if loopback else 'https'}://{netloc}"
    elif scheme == "capture":  # capture:///abs/file.sqlite3, capture://rel/file.sqlite3, capture://
        netloc = "" if parts.netloc == "localhost" else parts.netloc
        if netloc + parts.path not in ("", "/"):
            options["path"] = unquote(netloc + parts.path)
    elif parts.netloc or parts.path not in ("", "/"):
        raise invalid(f"{scheme}:// URLs take no host or path; write just {scheme}://")

    for name, raw in _query(parts.query, invalid):
        kind = allowed.get(name)
        if kind is None:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise invalid(
                f"unknown option {name!r} in {scheme}:// URL (accepted options: {accepted})"
            )
        if name in options:
            raise invalid(f"option {name!r} is given twice in the {scheme}:// URL")
        options[name] = _typed(name, kind, raw, invalid)
    return {"BACKEND": backend, "OPTIONS": options}


def _query(query: str, invalid: Callable[[str], InvalidMailer]) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise invalid("malformed query string in mailer URL; use ?name=value&name=value") from None


def _typed(name: str, kind: str, raw: str, invalid: Callable[[str], InvalidMailer]) -> Any:
    if kind == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise invalid(f"option {name!r} must be true/false/1/0/yes/no, got {raw!r}")
    if kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise invalid(f"option {name!r} must be a number of seconds, got {raw!r}") from None
        if not value > 0:
            raise invalid(f"option {name!r} must be a positive number of seconds, got {raw!r}")
        return value
    if kind == "ints":
        try:
            return [int(v) for v in raw.split(",")]
        except ValueError:
            raise invalid(
                f"option {name!r} must be comma-separated integers, got {raw!r}"
            ) from None
    if kind == "int":
        if not raw.isdigit() or int(raw) < 1:
            raise invalid(f"option {name!r} must be a positive integer, got {raw!r}")
        return int(raw)
    if not raw:
        raise invalid(f"option {name!r} needs a value")
    return raw
