"""Header fields of a raw mail: unfolding, RFC 2047 encoded words (also the
broken ones), 8-bit bytes where none may be, addresses, message ids and
dates. Every repair is appended to the caller's problem list. Pure.
"""

from __future__ import annotations

import email
import email.utils
import re
from datetime import UTC, datetime
from email.message import Message

from maildesk.mail.charset import (
    _decode_base64_lenient,
    _decode_bytes,
    _guess_decode,
    _short,
)
from maildesk.mail.text import clean
from maildesk.types import Address

#: At most this many message ids are kept from References / In-Reply-To.
MAX_REFERENCES = 500

# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------

_FOLDING = re.compile(rb"\r?\n(?=[ \t])")
_LINE_BREAKS = re.compile(rb"[\r\n]+")
_EIGHT_BIT_RUN = re.compile(rb"([\x80-\xff]+)")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")
_HEADERS_WITH_NOTES = frozenset({"subject", "from", "sender", "reply-to", "to", "cc"})


def _header_bytes(value: object) -> bytes:
    """The octets of a header value as the stdlib stored them.

    ``message_from_bytes`` keeps 8-bit header bytes as surrogate escapes.
    """
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _unfold(value: object) -> tuple[str, str | None]:
    """Unfold a raw header value and decode its raw 8-bit bytes.

    Raw UTF-8 is legitimate (RFC 6532); anything else is read as
    windows-1252 and reported. Encoded words are left alone.
    """
    data = _LINE_BREAKS.sub(b" ", _FOLDING.sub(b"", _header_bytes(value)))
    if data.isascii():
        return data.decode("ascii"), None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    # Mixed headers exist (a UTF-8 name pasted into a latin-1 subject), so
    # each run of 8-bit bytes is judged on its own.
    chunks = _EIGHT_BIT_RUN.split(data)
    for index in range(1, len(chunks), 2):
        chunks[index] = _guess_decode(chunks[index])[0].encode("utf-8")
    return b"".join(chunks).decode("utf-8"), "raw 8-bit bytes decoded as windows-1252"


def _decode_encoded_words(text: str) -> tuple[str, list[str]]:
    """Decode RFC 2047 encoded words, tolerating broken ones.

    Unlike ``email.header.decode_header`` this survives wrong charset
    labels (falls back to UTF-8, then windows-1252), bad base64 padding and
    encoded words glued to ordinary text.
    """
    if "=?" not in text:
        return text, []
    notes: list[str] = []
    out: list[str] = []
    pos = 0
    previous_was_word = False
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        # Whitespace between two encoded words is not part of the text.
        if not (previous_was_word and not between.strip()):
            out.append(between)
        charset, encoding, payload = match.groups()
        raw = payload.encode("utf-8")
        if encoding in "Qq":
            data = _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))
        else:
            data, broken = _decode_base64_lenient(raw)
            if broken:
                notes.append("broken base64 in encoded word")
        decoded, note = _decode_bytes(data, charset.split("*", 1)[0])
        if note:
            notes.append(note)
        out.append(decoded)
        pos = match.end()
        previous_was_word = True
    out.append(text[pos:])
    return "".join(out), notes


def _decode_header(value: object) -> tuple[str, list[str]]:
    """Fully decode one header value: unfold, 8-bit bytes, encoded words."""
    text, note = _unfold(value)
    decoded, notes = _decode_encoded_words(text)
    if note:
        notes.insert(0, note)
    return clean(decoded).strip(), notes


def _collapse(text: str) -> str:
    """Single spaces instead of runs of whitespace and control characters."""
    return " ".join(_CONTROL_CHARS.sub(" ", text).split())


def _header_map(msg: Message, problems: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Decoded first value of every header, plus all raw values by name."""
    headers: dict[str, str] = {}
    raw_values: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        key = clean(str(name)).strip().lower()
        if not key:
            continue
        raw_values.setdefault(key, []).append(value)
        if key in headers:
            continue
        decoded, notes = _decode_header(value)
        headers[key] = decoded
        if key in _HEADERS_WITH_NOTES:
            problems.extend(f"header {key.title()}: {note}" for note in notes)
    return headers, raw_values


def _addresses(values: list[str], header: str, problems: list[str]) -> tuple[Address, ...]:
    """Parse mailboxes from all occurrences of an address header.

    The raw (unfolded, 8-bit decoded) value is split first and display names
    are decoded afterwards, so an encoded comma in a name does not split the
    mailbox. Senders that encode whole addresses are caught by a second
    attempt on the fully decoded value.
    """
    result: list[Address] = []
    seen: set[str] = set()
    for value in values:
        text, _ = _unfold(value)
        found = _mailboxes(text, decode_names=True)
        if not found and "=?" in text:
            found = _mailboxes(_decode_encoded_words(text)[0], decode_names=False)
        if not found and text.strip():
            problems.append(f"header {header}: no valid address in {_short(text)}")
        for address in found:
            if address.email not in seen:
                seen.add(address.email)
                result.append(address)
    return tuple(result)


def _mailboxes(text: str, *, decode_names: bool) -> list[Address]:
    """Valid mailboxes in ``text``; entries without a usable address are dropped."""
    try:
        pairs = email.utils.getaddresses([text])
    except Exception:  # noqa: BLE001 - stdlib parser on hostile input
        return []
    found: list[Address] = []
    for name, addr in pairs:
        addr = clean(addr).strip().strip("<>").strip().lower()
        local, at, domain = addr.rpartition("@")
        if not at or not local or not domain or any(c.isspace() or c in "<>" for c in addr):
            continue
        if decode_names and "=?" in name:
            name = _decode_encoded_words(name)[0]
        name = _collapse(clean(name)).strip("\"' ")
        if name.lower() == addr:
            name = ""
        found.append(Address(email=addr, name=name))
    return found


_COMMENT = re.compile(r"\([^()]*\)")
_BRACKETED_ID = re.compile(r"<([^<>]*)>")
_ID_SEPARATORS = re.compile(r"[\s<>,]+")


def _message_ids(value: str) -> tuple[str, ...]:
    """Message ids without angle brackets, in order, without duplicates.

    Takes the bracketed ids when there are any (so "<a@b> (Bob's mail of
    Monday)" gives one id), else whitespace-separated tokens with an "@".
    """
    text = _COMMENT.sub(" ", clean(value))
    bracketed = [m.strip() for m in _BRACKETED_ID.findall(text)]
    if bracketed:
        outside = _BRACKETED_ID.sub(" ", text).split()
        candidates = [i for i in bracketed if i] + [t for t in outside if "@" in t]
    else:
        tokens = [t for t in _ID_SEPARATORS.split(text) if t]
        candidates = [t for t in tokens if "@" in t] or tokens
    ids: list[str] = []
    for candidate in candidates:
        candidate = "".join(candidate.split())
        if candidate and candidate not in ids:
            ids.append(candidate)
            if len(ids) >= MAX_REFERENCES:
                break
    return tuple(ids)


def _parse_date(value: str, fallback: datetime | None, problems: list[str]) -> datetime | None:
    """Timezone-aware date of the Date header, keeping the sender's offset.

    mail-parser's own result (in UTC) is used when the stdlib cannot read
    the header; a naive result ("-0000": zone unknown) is taken as UTC.
    """
    if not value:
        return None
    parsed: datetime | None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001 - ValueError, TypeError, OverflowError ...
        parsed = None
    if parsed is None and isinstance(fallback, datetime):
        parsed = fallback
    if parsed is None:
        problems.append(f"header Date: {_short(value)} could not be parsed")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _return_path(value: str | None) -> str | None:
    """Envelope sender: None when absent, "" for the null path ``<>``."""
    if value is None:
        return None
    match = _BRACKETED_ID.search(value)
    address = match.group(1) if match else (value.split() or [""])[0]
    return "".join(address.split()).lower()


def _strip_brackets(value: str) -> str:
    """Remove one pair of surrounding angle brackets and whitespace."""
    value = value.strip()
    if value.startswith("<"):
        value = value[1:]
    if value.endswith(">"):
        value = value[:-1]
    return value.strip()
