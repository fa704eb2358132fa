"""Header safety and formatting: the only place header text is made.

Everything a caller gives that ends up in a header goes through here:

* :func:`check_name` / :func:`check_value` refuse anything that could start a new header
  line (CR, LF, NUL, and every other character ``str.splitlines`` breaks on), so header
  injection is impossible by construction rather than by escaping.
* :func:`parse_address` is a strict, linear-time parser for one mailbox. It accepts the
  forms people write (``a@example.com``, ``Name <a@example.com>``,
  ``"Last, First" <a@example.com>``, ``("Name", "a@example.com")``) and rejects anything
  a human could read as a different address than the one used (CVE-2023-27043 shapes).
  It never calls ``email.utils.parseaddr``.
* :func:`render` turns a value into folded header lines: addresses and identifiers are
  folded at whitespace and never RFC 2047-encoded; free text is encoded only where it
  must be (non-ASCII, control characters, a literal ``=?``, an unbreakable run too long
  for a line), whole words at a time, so it decodes back to exactly what was given.
  No line exceeds 998 octets.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mailpost import _django
from mailpost.exceptions import BadHeaderError, InvalidAddress

__all__ = [
    "Address",
    "AddressInput",
    "check_name",
    "check_value",
    "encode_words",
    "fold",
    "format_addresses",
    "parse_address",
    "render",
]

#: What a caller may give for one address.
AddressInput = str | tuple[str, str]

MAX_LINE = 998
SOFT_LINE = 78

#: Every character str.splitlines() treats as a line boundary, plus NUL.
_BREAKS = re.compile("[\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_FTEXT = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")
_PLAIN_WORD = re.compile(r"[\x21-\x7e]*\Z")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\Z")
_DISPLAY_SPECIALS = set('()<>[]:;@\\,"')
_TOKENS = re.compile(r"[ \t]*[^ \t]+|[ \t]+")

#: Headers whose values are identifiers: ASCII only, folded at whitespace, never encoded.
IDENTIFIER_HEADERS = frozenset(
    {
        "message-id",
        "in-reply-to",
        "references",
        "content-id",
        "resent-message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-post",
        "list-help",
        "list-subscribe",
        "list-owner",
        "list-archive",
    }
)

#: Headers whose values are address lists.
ADDRESS_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "reply-to",
        "sender",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-sender",
        "disposition-notification-to",
    }
)


_valid_names: set[str] = set()


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid header field name (RFC 5322 ftext), else raise."""
    if type(name) is str and name in _valid_names:
        return name
    if not isinstance(name, str):
        raise BadHeaderError(f"header name must be a string, not {type(name).__name__}")
    if not _FTEXT.match(name):
        raise BadHeaderError(
            f"invalid header name {name!r}: only printable ASCII without ':' or spaces",
            field=name,
        )
    if type(name) is str and len(_valid_names) < 1024:
        _valid_names.add(name)
    return name


def check_value(field: str, value: str) -> str:
    """Return ``value`` if it cannot start a new header line, else raise naming ``field``."""
    match = _BREAKS.search(value)
    if match:
        # Django's sentence first (programs match on it), then which header and what.
        what = "linefeed or carriage return" if match.group() in "\r\n" else "line break or NUL"
        raise BadHeaderError(
            f"Header values may not contain {what} characters "
            f"({field}: found {match.group()!r} in {_short(value)!r})",
            field=field,
        )
    return value


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


# -- addresses ------------------------------------------------------------------------


class Address(NamedTuple):
    """One mailbox: a display name (possibly empty) and an addr-spec whose domain is in
    ASCII (IDNA) form; the local part may be non-ASCII (RFC 6531), and then the address
    can only travel over SMTPUTF8, with the header written as UTF-8 (RFC 6532).

    Immutable (parsed addresses are cached and shared) and cheap to make.
    """

    display_name: str
    local: str
    domain: str

    @property
    def addr_spec(self) -> str:
        """``local@domain``; just ``local`` for a local-part-only address (``"root"``)."""
        return f"{self.local}@{self.domain}" if self.domain else self.local

    def tokens(self) -> list[str]:
        """Header text for this mailbox, as foldable tokens (later ones start with a space)."""
        if not self.display_name:
            return [self.addr_spec]
        return [*_display_tokens(self.display_name), f" <{self.addr_spec}>"]


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL_RE = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
#: The everyday shapes, ``a.b@example.com`` and ``Ann Lee <a.b@example.com>``, in one match.
#: Anything else (quotes, IDN, literals, odd spacing) takes the full parser below.
_FAST_ADDRESS = re.compile(
    rf"(?:(?P<name>{_ATOM}(?: {_ATOM})*) <)?"
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL_RE}(?:\.{_LABEL_RE})*)"
    r"(?(name)>)\Z"
)
#: The bare ``a.b@example.com`` shape alone: ~2x faster than trying a display name first.
_FAST_ADDR_SPEC = re.compile(
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL_RE}(?:\.{_LABEL_RE})*)\Z"
)


def parse_address(value: AddressInput, field: str) -> Address:
    """Parse one mailbox given as a string or a ``(display name, address)`` pair.

    Results are cached: bulk sends repeat the same sender and often the same recipients.
    """
    if isinstance(value, str):
        return _parse_cached(value, field)
    return _parse(plain_text(value), field)


def plain_text(value: object) -> object:
    """A Django lazy string (``gettext_lazy``) as ``str``; anything else unchanged."""
    return _django.plain(value)


@functools.lru_cache(maxsize=4096)
def _parse_cached(value: str, field: str) -> Address:
    if "<" not in value:
        match = _FAST_ADDR_SPEC.match(value)
        if match is not None:
            local, domain = match.group("local", "domain")
            if len(local) <= 64 and len(local) + len(domain) < 254:
                return Address("", local, domain)
        return _parse(value, field)
    match = _FAST_ADDRESS.match(value)
    if match is not None:
        name, local, domain = match.group("name", "local", "domain")
        if (
            len(local) <= 64
            and len(local) + len(domain) < 254
            and (name is None or ("=?" not in name and max(map(len, name.split(" "))) <= 70))
        ):
            return Address(name or "", local, domain)
    return _parse(value, field)


def _parse(value: object, field: str) -> Address:
    if isinstance(value, tuple):
        if len(value) != 2 or not all(isinstance(v, str) for v in value):
            raise InvalidAddress(
                f"{field}: an address tuple must be (display name, address), got {value!r}",
                field=field,
            )
        name, addr = value
        check_value(field, name)
        check_value(field, addr)
        local, domain = _parse_addr_spec(addr.strip(), field, addr)
        return Address(name, local, domain)
    if not isinstance(value, str):
        raise InvalidAddress(
            f"{field}: an address must be a string, not {type(value).__name__}", field=field
        )
    check_value(field, value)
    text = value.strip()
    if not text:
        raise InvalidAddress(f"{field}: empty address", field=field)
    if not text.endswith(">"):
        if "<" in text or ">" in text:
            raise _ambiguous(field, value)
        local, domain = _parse_addr_spec(text, field, value)
        return Address("", local, domain)
    if text.startswith('"'):
        display, end = _quoted_string(text, 0, field, value)
        rest = text[end:].lstrip(" \t")
        if not rest.startswith("<"):
            raise _ambiguous(field, value)
        inner = rest[1:-1]
    else:
        if text.count("<") != 1 or text.count(">") != 1:
            raise _ambiguous(field, value)
        start = text.index("<")
        display = text[:start].strip(" \t")
        if any(c in _DISPLAY_SPECIALS for c in display):
            raise InvalidAddress(
                f'{field}: display name {display!r} contains one of ()<>[]:;@\\," '
                f"- quote it, e.g. '\"{display}\" <...>', or pass a (name, address) tuple",
                field=field,
            )
        inner = text[start + 1 : -1]
    if "<" in inner or ">" in inner:
        raise _ambiguous(field, value)
    local, domain = _parse_addr_spec(inner.strip(" \t"), field, value)
    return Address(display, local, domain)


def _ambiguous(field: str, value: str) -> InvalidAddress:
    return InvalidAddress(
        f"{field}: {_short(value)!r} is not one unambiguous address "
        "(expected 'user@example.com' or 'Name <user@example.com>')",
        field=field,
    )


def _quoted_string(text: str, start: int, field: str, original: str) -> tuple[str, int]:
    """Unquote the quoted-string at ``text[start]``; return (content, index after it)."""
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise InvalidAddress(f"{field}: unbalanced quotes in {_short(original)!r}", field=field)


def _parse_addr_spec(addr: str, field: str, original: str) -> tuple[str, str]:
    if addr.startswith('"'):
        local_text, end = _quoted_string(addr, 0, field, original)
        if addr[end : end + 1] != "@":
            raise _ambiguous(field, original)
        domain = addr[end + 1 :]
        if not local_text or not all(
            " " <= c <= "~" or (c > "\x7f" and _utf8_char(c)) for c in local_text
        ):
            raise InvalidAddress(
                f"{field}: invalid quoted local part in {_short(original)!r}", field=field
            )
        escaped = local_text.replace("\\", "\\\\").replace('"', '\\"')
        atom = _dot_atom(local_text) if local_text.isascii() else _utf8_dot_atom(local_text)
        local = local_text if atom else f'"{escaped}"'
    else:
        if "@" not in addr and addr.isascii() and _dot_atom(addr) and len(addr) <= 64:
            # A local part alone ("root"), which Django sends and a local MTA delivers.
            return addr, ""
        if addr.count("@") != 1:
            raise InvalidAddress(
                f"{field}: {_short(original)!r} must contain exactly one '@'"
                if "@" not in addr or addr.count("@") > 1
                else f"{field}: invalid address {_short(original)!r}",
                field=field,
            )
        local, domain = addr.split("@")
        if not local:
            raise InvalidAddress(f"{field}: empty local part in {_short(original)!r}", field=field)
        if not local.isascii():
            if not _utf8_dot_atom(local):
                raise InvalidAddress(
                    f"{field}: invalid local part {local!r} in {_short(original)!r} "
                    "(a non-ASCII local part may hold letters, marks, digits, symbols and "
                    "punctuation, not spaces or control characters)",
                    field=field,
                )
        elif not _dot_atom(local):
            raise InvalidAddress(
                f"{field}: invalid local part {local!r} in {_short(original)!r}", field=field
            )
    if len(local.encode()) > 64:
        raise InvalidAddress(
            f"{field}: local part of {_short(original)!r} is longer than 64 octets", field=field
        )
    domain = _parse_domain(domain, field, original)
    if len(local.encode()) + 1 + len(domain) > 254:
        raise InvalidAddress(
            f"{field}: address {_short(original)!r} is longer than 254 octets", field=field
        )
    return local, domain


def _dot_atom(text: str) -> bool:
    return all(part and _ATEXT.match(part) for part in text.split("."))


#: Unicode categories refused in a non-ASCII local part: separators (spaces) and "other"
#: (controls, format characters such as bidi overrides, unassigned, surrogates).
_REFUSED_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})


def _utf8_char(c: str) -> bool:
    """A non-ASCII character RFC 6531's ``UTF8-non-ascii`` allows and a reader can see."""
    return unicodedata.category(c) not in _REFUSED_CATEGORIES


def _utf8_dot_atom(text: str) -> bool:
    """RFC 6531 dot-atom: atoms of ASCII ``atext`` and visible non-ASCII characters."""
    return all(
        part and all(_ATEXT.match(c) if c < "\x80" else _utf8_char(c) for c in part)
        for part in text.split(".")
    )


def _parse_domain(domain: str, field: str, original: str) -> str:
    if not domain:
        raise InvalidAddress(f"{field}: empty domain in {_short(original)!r}", field=field)
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        try:
            if literal[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(literal[5:])
            else:
                ipaddress.IPv4Address(literal)
        except ValueError:
            raise InvalidAddress(
                f"{field}: invalid domain literal {domain!r}", field=field
            ) from None
        return domain
    labels = domain.split(".")
    out = []
    for label in labels:
        if not label.isascii():
            try:
                label = label.encode("idna").decode("ascii")
            except UnicodeError:
                raise InvalidAddress(
                    f"{field}: domain {domain!r} cannot be IDNA-encoded", field=field
                ) from None
        if len(label) > 63:
            raise InvalidAddress(
                f"{field}: domain label {_short(label, 20)!r} is longer than 63 octets",
                field=field,
            )
        if not _LABEL.match(label):
            raise InvalidAddress(
                f"{field}: invalid domain {domain!r} in {_short(original)!r}", field=field
            )
        out.append(label)
    return ".".join(out)


@functools.lru_cache(maxsize=1024)
def address_header(name: str, items: tuple[str, ...]) -> str:
    """The folded header line for address strings, cached: bulk sends repeat the sender."""
    parsed = [parse_address(a, name) for a in items if a]
    return fold(name, format_addresses(parsed)) if parsed else ""


def format_addresses(addresses: Iterable[Address]) -> list[str]:
    """Foldable tokens for an address list: ``a@x, Name <b@y>``."""
    tokens: list[str] = []
    for addr in addresses:
        parts = addr.tokens()
        if tokens:
            tokens[-1] += ","
            first = parts[0]
            parts[0] = first if first[:1] in " \t" else " " + first
        tokens.extend(parts)
    return tokens


@functools.lru_cache(maxsize=1024)
def _display_tokens(name: str) -> tuple[str, ...]:
    return tuple(_display_tokens_uncached(name))


def _display_tokens_uncached(name: str) -> list[str]:
    """Tokens for a display name: atoms, a quoted-string, or encoded-words."""
    words = name.split(" ")
    simple = (
        name.isascii()
        and name == name.strip()
        and "  " not in name
        and all(w and _PLAIN_WORD.match(w) and len(w) <= 70 and "=?" not in w for w in words)
    )
    if simple and all(_ATEXT.match(w) for w in words):
        return [words[0], *(" " + w for w in words[1:])]
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if (
        name.isascii()
        and len(quoted) <= 76
        and all(" " <= c <= "~" or c == "\t" for c in name)
        and "=?" not in name
    ):
        return [quoted]
    if words and all(words) and "\t" not in name:
        return _mixed_phrase(words)
    return encode_words(name, phrase=True)


def _plain_atom(word: str) -> bool:
    return bool(_ATEXT.match(word)) and "=?" not in word and len(word) <= 70


def _mixed_phrase(words: list[str]) -> list[str]:
    """A display name whose words are encoded only where they need it.

    Runs of words that need encoding become encoded-words (their inner spaces inside the
    encoding); the plain atoms between them stay as they are. Decoders keep the space
    between an encoded-word and an atom, so the name reads back exactly even in parsers
    that also keep the space between adjacent encoded-words (Python's, CPython issue
    128110), which a name encoded whole and split over several encoded-words would hit.
    """
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            tokens = encode_words(" ".join(run), phrase=True)
            out.extend([(" " if out else "") + tokens[0], *tokens[1:]])
            run.clear()

    for word in words:
        if _plain_atom(word):
            flush()
            out.append((" " if out else "") + word)
        else:
            run.append(word)
    flush()
    return out


# -- free text --------------------------------------------------------------------------

_Q_PHRASE_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_EW_PREFIX_Q = "=?utf-8?q?"
_EW_PREFIX_B = "=?utf-8?b?"
_EW_MAX = 75


def encode_words(text: str, *, phrase: bool = False) -> list[str]:
    """RFC 2047 encoded-words for ``text`` (UTF-8), each at most 75 characters.

    Words break after a space of ``text`` whenever one fits (a word longer than an
    encoded-word is the only thing ever split, and never inside a character): some mail
    clients show a gap between adjacent encoded-words, which must not land inside a word.
    Words after the first start with a space: decoders join adjacent encoded-words and
    drop the space between them, so the spaces of ``text`` are carried inside the encoding.
    """
    del phrase  # the Q alphabet below is safe in phrases and free text alike
    data = text.encode("utf-8")
    unsafe = sum(1 for b in data if b not in _Q_PHRASE_SAFE and b != 0x20)
    use_q = unsafe * 3 <= len(data)
    limit = _EW_MAX - len(_EW_PREFIX_Q) - 2 if use_q else 45
    words: list[str] = []
    chunk: list[str] = []
    costs: list[int] = []
    size = 0
    for ch in text:
        raw = ch.encode()
        cost = sum(1 if b in _Q_PHRASE_SAFE or b == 0x20 else 3 for b in raw) if use_q else len(raw)
        if chunk and size + cost > limit:
            cut = len(chunk)
            for k in range(len(chunk) - 1, 0, -1):
                if chunk[k - 1] in " \t":
                    cut = k
                    break
            words.append(_encoded_word("".join(chunk[:cut]), use_q))
            chunk, costs = chunk[cut:], costs[cut:]
            size = sum(costs)
        chunk.append(ch)
        costs.append(cost)
        size += cost
    if chunk or not words:
        words.append(_encoded_word("".join(chunk), use_q))
    return [words[0], *(" " + w for w in words[1:])]


def _encoded_word(text: str, use_q: bool) -> str:
    data = text.encode("utf-8")
    if use_q:
        body = "".join(
            "_" if b == 0x20 else chr(b) if b in _Q_PHRASE_SAFE else f"={b:02X}" for b in data
        )
        return f"{_EW_PREFIX_Q}{body}?="
    return f"{_EW_PREFIX_B}{base64.b64encode(data).decode('ascii')}?="


def _text_tokens(name: str, value: str) -> list[str]:
    """Tokens for an unstructured value, encoding only the words that need it."""
    if value == "":
        return [""]
    raw = _TOKENS.findall(value)
    limit = MAX_LINE - len(name) - 3

    def needs(token: str) -> bool:
        word = token.lstrip(" \t")
        return (
            not word
            or not _PLAIN_WORD.match(word)
            or "=?" in word
            or "?=" in word
            or len(token) > limit
        )

    flags = [needs(t) for t in raw]
    if raw[0][:1] in " \t":
        flags[0] = True
    if raw[-1][-1:] in " \t":
        flags[-1] = True
        if len(raw) > 1 and not raw[-1].strip(" \t"):
            flags[-2] = True
    tokens: list[str] = []
    i = 0
    while i < len(raw):
        if not flags[i]:
            tokens.append(raw[i])
            i += 1
            continue
        j = i
        while j + 1 < len(raw) and flags[j + 1]:
            j += 1
        run = "".join(raw[i : j + 1])
        lead = ""
        if i > 0:
            stripped = run.lstrip(" \t")
            lead = run[: len(run) - len(stripped)]
            run = stripped
            if not lead:  # pragma: no cover - tokens after the first start with whitespace
                lead = " "
        encoded = encode_words(run)
        encoded[0] = lead + encoded[0] if lead else encoded[0]
        tokens.extend(encoded)
        i = j + 1
    return tokens


def _identifier_tokens(name: str, value: str) -> list[str]:
    if not value.isascii():
        raise BadHeaderError(
            f"{name}: must be ASCII (it is an identifier header, which cannot be encoded)",
            field=name,
        )
    tokens = _TOKENS.findall(value.strip(" \t")) or [""]
    limit = MAX_LINE - len(name) - 3
    for token in tokens:
        if len(token) > limit:
            raise BadHeaderError(
                f"{name}: a run of {len(token)} characters without whitespace cannot be "
                f"folded into a {MAX_LINE}-octet line",
                field=name,
            )
    return tokens


# -- folding ----------------------------------------------------------------------------


def fold(name: str, tokens: Sequence[str], linesep: str = "\r\n") -> str:
    """Join ``name: tokens`` into header lines, breaking only before a token's leading
    whitespace, so that unfolding gives back exactly the joined tokens."""
    if sum(map(len, tokens)) + len(name) + 2 <= SOFT_LINE:
        joined = "".join(tokens)
        sep = "" if joined[:1] in (" ", "\t") else " "
        return f"{name}:{sep}{joined}{linesep}"
    lines: list[str] = []
    line = f"{name}:"
    bare = len(line)
    for i, token in enumerate(tokens):
        piece = " " + token if i == 0 and token[:1] not in " \t" else token
        if len(line) + len(piece) > SOFT_LINE and len(line) > bare and piece[:1] in " \t":
            lines.append(line)
            line = piece
        else:
            line += piece
    lines.append(line)
    return linesep.join(lines) + linesep


def render(name: str, value: str, linesep: str = "\r\n") -> str:
    """Validate and fold one header, choosing the treatment its name calls for."""
    check_name(name)
    lower = name.lower()
    if (
        len(name) + len(value) + 2 <= SOFT_LINE
        and value.isascii()
        and value.isprintable()  # so no line break, NUL or other separator either
        and value[:1] != " "
        and value[-1:] != " "
        and "=?" not in value
        and "?=" not in value
        and lower not in ADDRESS_HEADERS
    ):
        return f"{name}: {value}{linesep}"  # short plain text: nothing to encode or fold
    check_value(name, value)
    if lower in IDENTIFIER_HEADERS:
        tokens = _identifier_tokens(name, value)
    elif lower in ADDRESS_HEADERS:
        tokens = format_addresses(parse_address(a, name) for a in split_address_list(value, name))
    else:
        tokens = _text_tokens(name, value)
    return fold(name, tokens, linesep)


def split_address_list(value: str, field: str) -> list[str]:
    """Split a header-style address list on commas outside quotes and angle brackets."""
    out: list[str] = []
    start = 0
    quoted = False
    angle = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "<":
            angle += 1
        elif not quoted and c == ">":
            angle -= 1
        elif c == "," and not quoted and angle == 0:
            out.append(value[start:i])
            start = i + 1
        i += 1
    out.append(value[start:])
    items = [item for item in out if item.strip()]
    if not items:
        raise InvalidAddress(f"{field}: no address in {_short(value)!r}", field=field)
    return items
