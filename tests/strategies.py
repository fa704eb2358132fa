"""Shared helpers and hypothesis strategies for the composition-layer tests.

The helpers look at a message the way a receiving MUA does: serialize it to wire bytes,
then parse those bytes with the stdlib parser (``email.policy.default``).
"""

from __future__ import annotations

import email.header
import email.message
import email.policy
import re
from collections.abc import Iterator
from email.parser import BytesParser

from hypothesis import strategies as st

from mailpost.message import EmailMessage, serialize

FQDN = "mailhost.example.org"

#: Characters that end a line somewhere (str.splitlines) plus NUL: never allowed in a header.
LINE_BREAKERS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
FORBIDDEN_IN_HEADERS = "\r\n\x00\u2028\u2029\x85"

#: RFC 5322 ftext: printable US-ASCII except ":".
FTEXT = "".join(chr(c) for c in range(33, 127) if chr(c) != ":")

#: Header names a composed message (or one of its parts) may legitimately carry.
MIME_PART_HEADERS = {
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "mime-version",
}


def wire(msg: EmailMessage) -> bytes:
    """The exact bytes the message would be sent as."""
    return serialize(msg)


def parse_bytes(data: bytes) -> email.message.EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def parse(msg: EmailMessage) -> email.message.EmailMessage:
    """Serialize ``msg`` and parse it back as a receiving MUA would."""
    return parse_bytes(serialize(msg))


def header_block(data: bytes) -> bytes:
    """The top-level header section of wire bytes (without the blank line)."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    assert sep, "no blank line between headers and body"
    return head


def raw_header(data: bytes, name: str) -> list[bytes]:
    """The raw (folded) text of every top-level header called ``name``, one item each."""
    found: list[list[bytes]] = []
    current: list[bytes] | None = None
    for line in header_block(data).split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        key = line.split(b":", 1)[0].strip().decode("ascii", "replace")
        current = [line] if key.lower() == name.lower() else None
        if current is not None:
            found.append(current)
    return [b"\r\n".join(lines) for lines in found]


def top_header_names(data: bytes) -> list[str]:
    """Names of the top-level headers, in order, lower-cased."""
    names = []
    for line in header_block(data).split(b"\r\n"):
        if line[:1] in (b" ", b"\t") or not line:
            continue
        names.append(line.split(b":", 1)[0].decode("ascii", "replace").lower())
    return names


def long_lines(data: bytes, limit: int = 998) -> list[bytes]:
    """Wire lines longer than ``limit`` octets (line ending excluded)."""
    return [line for line in data.split(b"\r\n") if len(line) > limit]


def norm(text: str) -> str:
    """Line endings normalized to LF, for comparing bodies."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def same_body(parsed: str, written: str) -> bool:
    """A parsed text body equals what was written, up to line endings and a final newline."""
    got, want = norm(parsed), norm(written)
    return got in (want, want + "\n")


def walk_leaves(msg: email.message.Message) -> Iterator[email.message.Message]:
    """Every non-multipart part, without descending into attached message/rfc822 parts."""
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        for sub in msg.get_payload():
            assert isinstance(sub, email.message.Message)
            yield from walk_leaves(sub)
    else:
        yield msg


def attachments_of(msg: email.message.EmailMessage) -> list[email.message.Message]:
    return [p for p in walk_leaves(msg) if p.get_content_disposition() == "attachment"]


ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


# ---------------------------------------------------------------- hypothesis strategies

#: Any text a caller might put in a field, including every kind of control character.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)

#: Text that must survive a round trip through a header (no line breaks, no NUL).
_header_char = st.characters(exclude_categories=("Cs",), exclude_characters=LINE_BREAKERS + "\x00")
header_text = st.text(_header_char, max_size=80)

#: Words for display names: no whitespace, anything else (specials and non-ASCII included).
_word = st.text(
    st.characters(
        exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
        exclude_characters=LINE_BREAKERS + "\x00",
    ),
    min_size=1,
    max_size=20,
)
display_names = st.lists(_word, min_size=1, max_size=4).map(" ".join)

#: Body text: anything but surrogates, including NUL, control characters and long lines.
body_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=300),
    st.builds(
        lambda a, n, b: a + "x" * n + b,
        st.text(max_size=20),
        st.integers(min_value=990, max_value=2100),
        st.text(max_size=20),
    ),
)

_local = st.from_regex(r"\A[a-z0-9](?:[a-z0-9_+-]{0,15}[a-z0-9])?\Z")
_label = st.from_regex(r"\A[a-z](?:[a-z0-9-]{0,10}[a-z0-9])?\Z")
_idn_label = st.sampled_from(["bücher", "münchen", "例え", "пример", "ελληνικά"])
domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(st.one_of(_label, _idn_label), min_size=1, max_size=3),
    st.sampled_from(["example", "com", "org", "test"]),
)
addr_specs = st.builds(lambda local, domain: f"{local}@{domain}", _local, domains)

#: (input as given to mailpost, display name, addr-spec)
addresses = st.one_of(
    addr_specs.map(lambda a: (a, "", a)),
    st.tuples(display_names, addr_specs).map(lambda t: ((t[0], t[1]), t[0], t[1])),
)

#: File names that can survive a round trip: the stdlib's get_filename() strips surrounding
#: whitespace and surrounding angle brackets (email.utils.unquote) whatever the encoding.
filenames = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\x85"),
    min_size=1,
    max_size=120,
).filter(lambda s: s == s.strip() and s != "" and not (s.startswith("<") and s.endswith(">")))


def rfc2047_decoded(raw: bytes) -> str:
    """A raw header, unfolded and decoded per RFC 2047 (whitespace between adjacent
    encoded-words ignored, as section 6.2 requires; the stdlib *address* parser keeps it)."""
    text = raw.replace(b"\r\n", b"").decode("ascii")
    return str(email.header.make_header(email.header.decode_header(text)))


def display_name_arrived(parsed_name: str, raw: bytes, written: str) -> bool:
    """The display name arrived: the stdlib parser returns it, or the raw header decodes to
    text containing it exactly (RFC 2047 decoding of adjacent encoded-words)."""
    return parsed_name == written or written in rfc2047_decoded(raw)
