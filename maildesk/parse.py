"""Turn one raw mail into a :class:`~maildesk.pipeline.types.ParsedMail`.

This is the only module that imports mail-parser, so that the rest of
maildesk deals with plain, frozen data and a parser swap touches one file.

Mail from the wild is broken in every conceivable way: wrong or missing
charset labels, raw 8-bit bytes in headers, truncated base64, multipart
structures nested until the parser gives up. A helpdesk must still open a
ticket for such a mail, so :func:`parse_mail` never raises. It reads what it
can and lists every repair in ``ParsedMail.problems`` so that an agent knows
to look at the raw mail.

mail-parser parses the MIME tree (guarding the stdlib parser against
recursion bombs) and serves as a second opinion for dates. Its decoded
bodies, headers and attachment list are *not* used as they are, because
(checked with mail-parser 4.8):

* body parts whose bytes do not match the declared charset come out with
  U+FFFD instead of the obvious windows-1252 characters;
* raw 8-bit bytes in headers are silently dropped ("Gr\\xfc\\xdfe" -> "Gre");
* the text of a forwarded message/rfc822 part is mixed into the outer body,
  and such a part gets a random ``xxxxxxxxxx.txt`` file name;
* parts without a name get random file names, and non-text parts without a
  name or Content-ID are decoded as text into ``text_not_managed``.

So the walk over the MIME tree and all decoding happen here, on the
``email.message.Message`` that mail-parser built.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.utils
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from urllib.parse import unquote

import mailparser
from mailparser.exceptions import MailParserRecursionError

from maildesk.filenames import sanitise_filename
from maildesk.htmlsafe import html_to_text, sanitise_html
from maildesk.pipeline.types import Address, DeliveryReport, ParsedAttachment, ParsedMail

__all__ = ["looks_like_mail", "parse_mail"]

log = logging.getLogger(__name__)

#: At most this many problems are kept; a hostile mail must not flood the
#: ticket with notes.
MAX_PROBLEMS = 30
#: At most this many message ids are kept from References / In-Reply-To.
MAX_REFERENCES = 500
#: looks_like_mail() only inspects the start of the input.
_SNIFF_BYTES = 64 * 1024

# --------------------------------------------------------------------------
# Bytes -> text
# --------------------------------------------------------------------------


def _windows_1252_char(byte: int) -> str:
    """windows-1252 as browsers read it: the 5 undefined bytes map to C1."""
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


# A charmap that cannot fail: decoding with it is the last resort, so it must
# turn any byte sequence into text without U+FFFD.
_WINDOWS_1252_TABLE = "".join(_windows_1252_char(i) for i in range(256))

# Labels that are read as windows-1252: real-world "latin-1" text uses the
# 0x80-0x9f range for windows-1252 characters (euro sign, typographic quotes)
# far more often than for C1 control characters, which is why the WHATWG
# encoding standard treats them as one.
_WINDOWS_1252_LABELS = frozenset(
    {
        "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819",
        "ibm819", "iso-ir-100", "windows-1252", "cp1252", "x-cp1252", "iso_8859-1:1987",
    }
)  # fmt: skip
_ASCII_LABELS = frozenset({"", "us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso646-us"})
_UTF8_LABELS = frozenset({"utf-8", "utf8", "utf_8", "unicode-1-1-utf-8", "x-unicode20utf8"})


def _decode_windows_1252(data: bytes) -> str:
    """Decode as windows-1252; never fails and never yields U+FFFD."""
    return codecs.charmap_decode(data, "strict", _WINDOWS_1252_TABLE)[0]


def _guess_decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset: UTF-8 if valid, else windows-1252.

    Valid UTF-8 with non-ASCII bytes is almost never anything else, and
    windows-1252 is the most common legacy charset in (western) mail.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return _decode_windows_1252(data), "windows-1252"


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode ``data`` labelled with charset ``declared``.

    Tries the declared charset, then UTF-8, then windows-1252. Returns the
    text and, when the label was wrong or unknown, a note that says so.
    """
    if not data:
        return "", None
    label = (declared or "").strip().strip("\"'").lower()
    if label in _ASCII_LABELS:
        if data.isascii():
            return data.decode("ascii"), None
        text, used = _guess_decode(data)
        if not label and used == "utf-8":
            return text, None  # unlabelled UTF-8 is the de-facto default
        stated = f"charset {_short(label)}" if label else "no charset"
        return text, f"{stated} but 8-bit bytes, decoded as {used}"
    if label in _WINDOWS_1252_LABELS:
        return _decode_windows_1252(data), None
    if label in _UTF8_LABELS:
        label = "utf-8-sig"
    try:
        text = data.decode(label)
        text.encode("utf-8")  # some codecs (utf-7, unicode_escape) make surrogates
    except LookupError:
        text, used = _guess_decode(data)
        return text, f"charset {_short(declared)} unknown, decoded as {used}"
    except Exception:  # noqa: BLE001 - UnicodeError, but codecs may raise anything
        text, used = _guess_decode(data)
        return text, f"bytes do not match charset {_short(declared)}, decoded as {used}"
    return text, None


def _short(value: object, limit: int = 40) -> str:
    """A repr() of ``value`` short enough for a problem note."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(_utf8_safe(text))


def _utf8_safe(text: str) -> str:
    """Guarantee that ``text`` encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _clean(text: str) -> str:
    """Final scrub for every string that leaves this module.

    NUL cannot be stored in PostgreSQL text columns and is never meaningful
    in mail; lone surrogates cannot be encoded at all.
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _utf8_safe(text)


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------

_FOLDING = re.compile(rb"\r?\n(?=[ \t])")
_LINE_BREAKS = re.compile(rb"[\r\n]+")
_EIGHT_BIT_RUN = re.compile(rb"([\x80-\xff]+)")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_BASE64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")
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
    return _clean(decoded).strip(), notes


def _collapse(text: str) -> str:
    """Single spaces instead of runs of whitespace and control characters."""
    return " ".join(_CONTROL_CHARS.sub(" ", text).split())


def _header_map(msg: Message, problems: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Decoded first value of every header, plus all raw values by name."""
    headers: dict[str, str] = {}
    raw_values: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        key = _clean(str(name)).strip().lower()
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
        addr = _clean(addr).strip().strip("<>").strip().lower()
        local, at, domain = addr.rpartition("@")
        if not at or not local or not domain or any(c.isspace() or c in "<>" for c in addr):
            continue
        if decode_names and "=?" in name:
            name = _decode_encoded_words(name)[0]
        name = _collapse(_clean(name)).strip("\"' ")
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
    text = _COMMENT.sub(" ", _clean(value))
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


# --------------------------------------------------------------------------
# MIME parts
# --------------------------------------------------------------------------

_QP_INVALID = re.compile(rb"=(?![0-9A-Fa-f]{2}|\r?\n|[ \t]*(?:\r?\n|$))")
_UUENCODINGS = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_PLAIN_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
_CID_REFERENCE = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)
# Extensions for parts that arrive without a name.
_EXTENSIONS = {
    "text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics",
    "text/csv": ".csv", "text/rfc822-headers": ".txt", "text/enriched": ".txt",
    "text/richtext": ".rtf", "text/rtf": ".rtf", "application/rtf": ".rtf",
    "application/pdf": ".pdf", "application/zip": ".zip", "application/json": ".json",
    "application/xml": ".xml", "text/xml": ".xml", "application/ics": ".ics",
    "application/pkcs7-signature": ".p7s", "application/x-pkcs7-signature": ".p7s",
    "application/pgp-signature": ".asc", "application/pgp-encrypted": ".asc",
    "message/rfc822": ".eml", "message/global": ".eml", "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt", "message/global-delivery-status": ".txt",
    "image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/gif": ".gif",
    "image/webp": ".webp", "image/bmp": ".bmp", "image/tiff": ".tif", "image/svg+xml": ".svg",
}  # fmt: skip
_DEFECT_TEXTS = {
    "NoBoundaryInMultipartDefect": "multipart part without boundary",
    "StartBoundaryNotFoundDefect": "multipart boundary never found, sub-parts not split",
    "CloseBoundaryNotFoundDefect": "closing multipart boundary missing (mail truncated?)",
    "FirstHeaderLineIsContinuationDefect": "first header line is a continuation line",
    "MisplacedEnvelopeHeaderDefect": "misplaced 'From ' line in the headers",
    "MissingHeaderBodySeparatorDefect": "no blank line between headers and body",
    "MultipartInvariantViolationDefect": "multipart part without sub-parts",
    "InvalidMultipartContentTransferEncodingDefect": "invalid transfer encoding on multipart",
}
# Base64 defects are reported by our own decoder (more precisely, and the
# stdlib only records them when a payload happens to be decoded).
_IGNORED_DEFECTS = frozenset(
    {"InvalidBase64PaddingDefect", "InvalidBase64CharactersDefect", "InvalidBase64LengthDefect"}
)
_MESSAGE_CONTAINERS = frozenset({"message/rfc822", "message/global"})


@dataclass
class _Draft:
    """An attachment before we know whether the HTML shows it inline."""

    filename: str
    original_filename: str
    content_type: str
    payload: bytes
    content_id: str
    disposition: str
    in_related: bool


@dataclass
class _Body:
    """What the walk over the MIME tree collected."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    drafts: list[_Draft] = field(default_factory=list)


def _decode_base64_lenient(data: bytes) -> tuple[bytes, bool]:
    """Decode as much base64 as possible; report whether it was broken.

    Characters outside the alphabet are skipped, decoding stops at the
    first padding, and an incomplete final group is decoded as far as it
    carries whole bytes (a single leftover character carries none).
    """
    compact = data.translate(None, b" \t\r\n")
    try:
        return base64.b64decode(compact, validate=True), False  # fast path: intact
    except (binascii.Error, ValueError):
        pass
    body, _, rest = data.partition(b"=")
    cleaned = _BASE64_ALPHABET.sub(b"", body)
    broken = bool(_BASE64_ALPHABET.sub(b"", rest.replace(b"=", b"")))
    broken = broken or len(cleaned) != len(re.sub(rb"\s", b"", body))
    remainder = len(cleaned) % 4
    if remainder == 1:
        cleaned = cleaned[:-1]
        broken = True
    elif remainder and b"=" not in data:
        broken = True  # missing padding: the data was most likely cut off
    try:
        return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4)), broken
    except (binascii.Error, ValueError):
        return b"", True


def _header_str(part: Message, name: str) -> str:
    """A header of a part as a plain str ("" when absent), 8-bit decoded."""
    value = part.get(name)
    if value is None:
        return ""
    for key, raw in part.raw_items():
        if key.lower() == name:
            return _unfold(raw)[0].strip()
    return str(value).strip()


def _payload_bytes(part: Message, where: str, problems: list[str]) -> bytes:
    """The decoded payload of a leaf part, repairing broken transfer encodings."""
    cte = _header_str(part, "content-transfer-encoding").lower()
    if cte == "base64":
        text = part.get_payload(decode=False)
        if not isinstance(text, str):
            return b""
        data, broken = _decode_base64_lenient(text.encode("ascii", "ignore"))
        if broken:
            problems.append(f"{where}: broken base64, decoded what was readable")
        return data
    if cte == "quoted-printable":
        text = part.get_payload(decode=False)
        if isinstance(text, str) and _QP_INVALID.search(text.encode("ascii", "ignore")):
            problems.append(f"{where}: invalid quoted-printable sequences kept as they were")
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    if cte not in _PLAIN_ENCODINGS and cte not in _UUENCODINGS:
        problems.append(f"{where}: unknown transfer encoding {_short(cte)}, read as it is")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _param(part: Message, param: str, header: str) -> tuple[str, str | None]:
    """Decoded value of a MIME parameter (RFC 2231 and RFC 2047 forms).

    The stdlib turns raw 8-bit bytes in the header into U+FFFD before it
    splits the parameters, so the header is decoded here first and then
    parsed by a scratch message. Returns "" when the parameter is absent.
    """
    raw = _header_str(part, header)
    if not raw or param not in raw.lower():
        return "", None
    scratch = Message()
    scratch[header] = raw
    value = scratch.get_param(param, header=header)
    note = None
    if isinstance(value, tuple):
        charset, _, text = value
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            decoded = text
        else:
            decoded, note = _decode_bytes(data, charset or "us-ascii")
    elif isinstance(value, str):
        decoded = email.utils.unquote(value)
    else:
        return "", None
    decoded, notes = _decode_encoded_words(decoded)
    return _clean(decoded).strip(), note or (notes[0] if notes else None)


def _filename(part: Message, where: str, problems: list[str]) -> str:
    """The file name the sender gave a part, decoded; "" when none."""
    name, note = _param(part, "filename", "content-disposition")
    if not name:
        name, note = _param(part, "name", "content-type")
    if note:
        problems.append(f"{where}: file name {note}")
    return name


def _content_type(part: Message) -> str:
    """Lower-cased MIME type of a part, text/plain when unreadable (RFC 2045)."""
    try:
        ctype = part.get_content_type()
    except Exception:  # noqa: BLE001 - hostile headers
        return "text/plain"
    return _clean(ctype).lower() if ctype.isascii() else "application/octet-stream"


def _disposition(part: Message) -> str:
    """Lower-cased Content-Disposition type ("" when absent)."""
    value = _header_str(part, "content-disposition")
    return value.split(";", 1)[0].strip().lower()


def _report_defects(part: Message, where: str, problems: list[str]) -> None:
    """Turn the stdlib's parse defects of one part into problem notes."""
    for defect in getattr(part, "defects", ()):
        name = type(defect).__name__
        if name in _IGNORED_DEFECTS:
            continue
        problems.append(f"{where}: {_DEFECT_TEXTS.get(name, name)}")


def _message_bytes(inner: Message, linesep: str) -> bytes:
    """Serialise an embedded message back to bytes (8-bit bytes preserved).

    The stdlib keeps no offsets into the raw mail, so the bytes are
    regenerated; with the outer mail's line separator and unmodified
    headers this reproduces the original for all but odd folding.
    """
    try:
        return inner.as_bytes(policy=compat32.clone(linesep=linesep))
    except Exception:  # noqa: BLE001 - odd charsets, recursion
        return str(inner).encode("utf-8", "surrogateescape")


def _walk(msg: Message, linesep: str, problems: list[str]) -> _Body:
    """Collect body texts and attachments, depth first in document order.

    Iterative, so that deep nesting cannot exhaust the Python stack here.
    Parts are numbered like IMAP sections ("1", "2.1") in problem notes.
    Embedded messages become one attachment each; their texts and files
    stay inside.
    """
    body = _Body()
    stack: list[tuple[Message, str, bool]] = [(msg, "", False)]
    while stack:
        part, number, in_related = stack.pop()
        where = f"part {number}" if number else "mail body"
        _report_defects(part, where, problems)
        ctype = _content_type(part)
        if part.is_multipart():
            children = part.get_payload()
            if ctype.startswith("message/"):
                _add_message_part(part, ctype, children, where, in_related, linesep, body, problems)
                continue
            related = ctype == "multipart/related"
            prefix = f"{number}." if number else ""
            for index in range(len(children) - 1, -1, -1):
                child = children[index]
                if isinstance(child, Message):
                    stack.append((child, f"{prefix}{index + 1}", related))
            continue
        if ctype.startswith("multipart/"):
            problems.append(f"{where}: multipart body could not be split into parts")
            continue
        _add_leaf(part, ctype, where, in_related, body, problems)
    return body


def _add_message_part(
    part: Message,
    ctype: str,
    children: list[Message],
    where: str,
    in_related: bool,
    linesep: str,
    body: _Body,
    problems: list[str],
) -> None:
    """Keep an embedded message (forward, bounce report) as one attachment."""
    inner = [c for c in children if isinstance(c, Message)]
    payload = linesep.encode("ascii").join(_message_bytes(c, linesep) for c in inner)
    original = _filename(part, where, problems)
    fallback = "attachment" + _EXTENSIONS.get(ctype, ".txt")
    if ctype in _MESSAGE_CONTAINERS:
        subject = _collapse(_decode_header(inner[0].get("subject", ""))[0]) if inner else ""
        # A subject is not a path: "Re: 1/2" must not lose "Re: 1".
        fallback = subject.replace("/", "_").replace("\\", "_") or "forwarded message"
        fallback += ".eml"
    body.drafts.append(
        _Draft(
            filename=sanitise_filename(original or fallback, fallback="message.eml"),
            original_filename=original,
            content_type=ctype,
            payload=payload,
            content_id=_strip_brackets(_header_str(part, "content-id")),
            disposition=_disposition(part),
            in_related=in_related,
        )
    )


def _add_leaf(
    part: Message, ctype: str, where: str, in_related: bool, body: _Body, problems: list[str]
) -> None:
    """Sort one leaf part into body text, body HTML and/or attachments."""
    disposition = _disposition(part)
    original = _filename(part, where, problems)
    is_text = ctype in ("text/plain", "text/html")
    is_body = is_text and disposition != "attachment" and (not original or disposition == "inline")
    payload = _payload_bytes(part, where, problems)
    if is_body:
        try:
            charset = part.get_content_charset()
        except Exception:  # noqa: BLE001 - hostile parameter syntax
            charset = None
        text, note = _decode_bytes(payload, charset)
        if note:
            problems.append(f"{where}: {note}")
        if "\x00" in text:
            problems.append(f"{where}: NUL bytes removed")
        text = _clean(text).replace("\r\n", "\n").replace("\r", "\n")
        (body.html if ctype == "text/html" else body.plain).append(text)
        if not original:
            return
    fallback = "attachment" + _EXTENSIONS.get(ctype, "")
    body.drafts.append(
        _Draft(
            filename=sanitise_filename(original, fallback=fallback),
            original_filename=original,
            content_type=ctype,
            payload=payload,
            content_id=_strip_brackets(_header_str(part, "content-id")),
            disposition=disposition,
            in_related=in_related,
        )
    )


def _finish_attachments(drafts: list[_Draft], html: str) -> tuple[ParsedAttachment, ...]:
    """Decide which parts the HTML shows inline and freeze the attachments.

    Inline: referenced as ``cid:`` from the HTML, or a part with a
    Content-ID or inline disposition inside multipart/related.
    """
    referenced = {unquote(m).strip().lower() for m in _CID_REFERENCE.findall(html)}
    attachments = []
    for draft in drafts:
        cid = _clean(draft.content_id)
        inline = bool(cid) and cid.lower() in referenced
        if draft.in_related and draft.disposition != "attachment":
            inline = inline or bool(cid) or draft.disposition == "inline"
        attachments.append(
            ParsedAttachment(
                filename=draft.filename,
                original_filename=_clean(draft.original_filename),
                content_type=draft.content_type,
                payload=draft.payload,
                content_id=cid,
                inline=inline,
            )
        )
    return tuple(attachments)


# --------------------------------------------------------------------------
# Delivery status notifications (bounces)
# --------------------------------------------------------------------------

# RFC 3464 / RFC 6533 parts: the machine-readable report and the returned
# headers of the mail that bounced (message/rfc822 is in _MESSAGE_CONTAINERS).
_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_RETURNED_HEADER_PARTS = frozenset({"text/rfc822-headers", "message/global-headers"})
_DSN_REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})
#: Local parts MTAs send bounces from (any domain). Exchange's system
#: mailbox "MicrosoftExchange<32 hex digits>" is matched by the pattern below.
_BOUNCE_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster"}
)
_EXCHANGE_SYSTEM_MAILBOX = re.compile(r"microsoftexchange[0-9a-f]{32}\Z")
#: A report walk looks at most this deep and at this many parts.
_REPORT_MAX_DEPTH = 3
_REPORT_MAX_PARTS = 100
#: Only the start of a text bounce is read: the failed addresses come first.
_BOUNCE_TEXT_LIMIT = 32 * 1024
#: RFC 5321 caps a path at 256 octets, so anything longer is no address; a
#: report keeps at most this many addresses per list.
_MAX_ADDRESS_LENGTH = 254
_MAX_REPORT_ADDRESSES = 100
#: Wording that makes a mail from a bounce sender a bounce. Searched in the
#: subject and the text. Exim, Postfix and qmail texts, Exchange and Office 365
#: NDRs (English and German), and the usual bounce subjects.
_BOUNCE_PHRASES = re.compile(
    r"created automatically by mail delivery software"  # Exim
    r"|this is the mail system at host"  # Postfix
    r"|this is the qmail-send program"  # qmail
    r"|could(?: not|n'?t|n’t) (?:be )?deliver"  # generic, Office 365
    r"|delivery has failed to these recipients"  # Exchange
    r"|delivery is delayed to these recipients"  # Exchange, delay
    r"|an folgende empfänger oder gruppen"  # Exchange, German
    r"|konnte nicht (?:übermittelt|zugestellt) werden"  # Exchange / Office 365, German
    r"|unzustellbar|nicht zustellbar|undeliverable|undelivered mail|mail delivery failed"
    r"|delivery status notification|failure notice|returned mail|delayed mail"
    r"|not yet been delivered|this is a warning only",
    re.IGNORECASE,
)
#: Wording of a delay warning (the mail is still queued, not lost).
_DELAY_PHRASES = re.compile(
    r"has not yet been delivered|this is a warning only|delay reason|delivery is delayed"
    r"|has been delayed|zustellung (?:ist |wurde )?verzögert|verzögert sich"
    r"|still being retried|will (?:continue to try|keep trying|retry)|attempts will continue",
    re.IGNORECASE,
)
#: Where the returned copy of the original mail starts in a text bounce;
#: addresses below it are the original's headers, not failed recipients.
_RETURNED_COPY = re.compile(
    r"^[ \t]*(?:"
    r"-+ ?this is a copy of (?:the|your) message"  # Exim
    r"|-+ ?below this line is a copy of the message"  # qmail
    r"|original message headers"  # Exchange
    r"|ursprüngliche nachricht"  # Exchange, German ("...enkopfzeilen")
    r"|-+ ?original message"
    r"|(?:received|return-path|dkim-signature|reporting-mta|final-recipient|message-id)[ \t]*:"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS = r"[^\s<>()\[\]\"'@,;:]+@[^\s<>()\[\]\"'@,;:]+"
#: Lines that name a failed recipient in a text bounce.
_FAILED_ADDRESS_PATTERNS = (
    # Postfix, qmail: "<bob@example.org>: reason", "<bob@…> (expanded from <info@…>): …"
    re.compile(rf"^<({_ADDRESS})>(?:[ \t]*\(expanded from <({_ADDRESS})>\))?[ \t]*:", re.M),
    # Exim ("  bob@example.org" under "failed:"), Exchange: the address alone
    re.compile(rf"^ {{0,3}}<?({_ADDRESS})>?(?:[ \t]*<mailto:[^>\n]*>)?[ \t]*:?[ \t]*$", re.M),
    # Exchange: "Bob Smith (bob@example.org)"
    re.compile(rf"^[ \t]*[^\n()<>:]{{0,80}}\(({_ADDRESS})\)[ \t]*$", re.M),
    # Office 365: "Your message to bob@example.org couldn't be delivered."
    re.compile(
        rf"(?:your message to|ihre nachricht an)[ \t]+<?({_ADDRESS})>?[ \t]+(?:could|konnte)",
        re.IGNORECASE,
    ),
)
#: An enhanced status code (RFC 3463) in running text, not inside an IP address.
_STATUS_CODE = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_MESSAGE_ID_LINE = re.compile(
    r"^[ \t]*message-id[ \t]*:(.*(?:\r?\n[ \t]+\S.*)?)", re.IGNORECASE | re.MULTILINE
)
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


def _is_bounce_sender(
    senders: tuple[Address, ...], return_path: str | None, headers: dict[str, str]
) -> bool:
    """Whether a mail may be a non-standard (plain text) bounce.

    Cheap, so that ordinary mail pays almost nothing: a mailer-daemon,
    postmaster or Exchange system sender, the null Return-Path that RFC 5321
    prescribes for bounces, or a header only bounces carry.
    """
    if return_path == "" or "x-failed-recipients" in headers:
        return True
    if "x-ms-exchange-message-is-ndr" in headers:
        return True
    for address in senders:
        local = address.email.rpartition("@")[0]
        if local in _BOUNCE_LOCAL_PARTS:
            return True
        if local.startswith("microsoftexchange") and _EXCHANGE_SYSTEM_MAILBOX.match(local):
            return True
    return False


def _report_parts(msg: Message) -> list[tuple[str, Message]]:
    """(type, part) of the mail and its multipart descendants, document order.

    Does not descend into embedded messages (the returned original's own
    parts are no part of the report) and stops at a small depth and count.
    """
    found: list[tuple[str, Message]] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack and len(found) < _REPORT_MAX_PARTS:
        part, depth = stack.pop()
        ctype = _content_type(part)
        found.append((ctype, part))
        if ctype.startswith("multipart/") and depth < _REPORT_MAX_DEPTH and part.is_multipart():
            children = part.get_payload()
            for child in reversed(children):
                if isinstance(child, Message):
                    stack.append((child, depth + 1))
    return found


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a delivery-status part, names lower-cased.

    The stdlib splits message/delivery-status into one header block per
    sub-message; message/global-delivery-status (and anything it could not
    split) arrives as text and is split here.
    """
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                fields: dict[str, str] = {}
                for name, value in block.raw_items():
                    fields.setdefault(str(name).strip().lower(), _unfold(value)[0].strip())
                blocks.append(fields)
        return blocks
    data = part.get_payload(decode=True)
    text = _guess_decode(data)[0] if isinstance(data, bytes) else ""
    for chunk in _BLANK_LINE.split(text[:_BOUNCE_TEXT_LIMIT]):
        fields = {}
        last: str | None = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t"):
                if last is not None:
                    fields[last] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            last = None
            if colon and name and name not in fields:
                fields[name] = value.strip()
                last = name
        blocks.append(fields)
    return blocks


def _dsn_address(value: str) -> str:
    """'rfc822; <Bob@Example.org>' -> 'bob@example.org'; '' when no address."""
    value = _COMMENT.sub(" ", value)
    kind, semicolon, rest = value.partition(";")
    if semicolon and "@" not in kind:
        value = rest
    value = "".join(value.split()).strip("<>").lower()
    return _clean(value) if "@" in value and len(value) <= _MAX_ADDRESS_LENGTH else ""


def _first_message_id(text: str) -> str:
    """The id of the first Message-ID line in a block of returned headers."""
    match = _MESSAGE_ID_LINE.search(text)
    return next(iter(_message_ids(match.group(1))), "") if match else ""


def _text_bounce(subject: str, text: str, own: set[str]) -> tuple[list[str], bool, str] | None:
    """Failed addresses, whether it is a delay warning, and the status code
    of a bounce written for humans; None when the text does not read like
    one. Only the part above the returned copy of the original is read."""
    head = text[:_BOUNCE_TEXT_LIMIT]
    if not (_BOUNCE_PHRASES.search(subject) or _BOUNCE_PHRASES.search(head)):
        return None
    cut = _RETURNED_COPY.search(head)
    section = head[: cut.start()] if cut else head
    found: list[tuple[int, str]] = []
    for pattern in _FAILED_ADDRESS_PATTERNS:
        for match in pattern.finditer(section):
            for index, group in enumerate(match.groups(), start=1):
                if group:
                    found.append((match.start(index), group.rstrip(".").lower()))
    addresses: list[str] = []
    for _, address in sorted(found):
        if len(address) > _MAX_ADDRESS_LENGTH:
            continue
        if address not in own and address not in addresses:
            addresses.append(_clean(address))
    status = _STATUS_CODE.search(section)
    return addresses, bool(_DELAY_PHRASES.search(section)), status.group(1) if status else ""


def _delivery_report(
    msg: Message,
    ctype: str,
    headers: dict[str, str],
    senders: tuple[Address, ...],
    return_path: str | None,
    text: str,
    drafts: list[_Draft],
) -> DeliveryReport | None:
    """What a bounce says: RFC 3464 fields first, the human text second.

    A multipart/report of type delivery-status (or a mail with a
    delivery-status part anywhere) is read field by field. Mail from a bounce
    sender (see :func:`_is_bounce_sender`) whose wording reads like a bounce
    is read as text: Exim, Postfix, qmail, Exchange and Office 365 each list
    the failed addresses in their own layout. Read receipts and other
    reports give None.
    """
    report_type = ""
    if ctype == "multipart/report":
        report_type = _param(msg, "report-type", "content-type")[0].lower()
        if report_type == "disposition-notification":
            return None  # a read receipt (RFC 8098), sent with <> like a bounce
    structured = report_type in _DSN_REPORT_TYPES or any(
        draft.content_type in _DSN_PARTS for draft in drafts
    )
    if not structured and not _is_bounce_sender(senders, return_path, headers):
        return None  # the path every ordinary mail takes
    failed: list[str] = []
    delayed: list[str] = []
    status = ""  # of the first failed or delayed recipient, else of any
    status_of_failure = False
    recipients_listed = False
    original = ""
    reported_id = ""  # Gmail's X-Original-Message-ID, when nothing was returned
    for part_type, part in _report_parts(msg):
        if part_type in _DSN_PARTS:
            for fields in _dsn_blocks(part):
                if not reported_id and fields.get("x-original-message-id"):
                    reported_id = next(iter(_message_ids(fields["x-original-message-id"])), "")
                addresses = [
                    address
                    for address in (
                        _dsn_address(fields.get("original-recipient", "")),
                        _dsn_address(fields.get("final-recipient", "")),
                    )
                    if address
                ]
                if not addresses:
                    continue  # the per-message block, or junk
                recipients_listed = True
                action = (fields.get("action", "").split() or [""])[0].lower()
                target = {"failed": failed, "delayed": delayed}.get(action)
                code = (fields.get("status", "").split() or [""])[0]
                if code and target is not None and not status_of_failure:
                    status, status_of_failure = code, True
                elif code and not status:
                    status = code
                if target is not None:
                    target.extend(a for a in addresses if a not in target)
        elif part_type in _MESSAGE_CONTAINERS and not original:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = next(iter(_message_ids(_header_str(inner[0], "message-id"))), "")
        elif part_type in _RETURNED_HEADER_PARTS and not original:
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                original = _first_message_id(_guess_decode(data[:_BOUNCE_TEXT_LIMIT])[0])
    if not recipients_listed:
        # No usable RFC 3464 part: read what the MTA wrote for humans.
        own = {address.email for address in senders}
        found = _text_bounce(headers.get("subject", ""), text, own)
        if found is None and not structured and "x-failed-recipients" not in headers:
            return None
        if found is not None:
            addresses, is_delay, status = found
            (delayed if is_delay else failed).extend(addresses)
    for address in _failed_recipients_header(headers.get("x-failed-recipients", "")):
        if address not in failed:
            failed.append(address)
    if not original:
        cut = _RETURNED_COPY.search(text[:_BOUNCE_TEXT_LIMIT])
        original = _first_message_id(text[cut.start() :] if cut else "") or reported_id
    return DeliveryReport(
        failed=tuple(failed[:_MAX_REPORT_ADDRESSES]),
        delayed=tuple([a for a in delayed if a not in failed][:_MAX_REPORT_ADDRESSES]),
        original_message_id=_clean(original),
        status=_clean(status),
    )


def _failed_recipients_header(value: str) -> list[str]:
    """The addresses of an X-Failed-Recipients header (comma-separated)."""
    return [a for a in (_dsn_address(item) for item in value.split(",")) if a]


def _safe_delivery_report(
    msg: Message,
    ctype: str,
    headers: dict[str, str],
    senders: tuple[Address, ...],
    return_path: str | None,
    text: str,
    drafts: list[_Draft],
    problems: list[str],
) -> DeliveryReport | None:
    """:func:`_delivery_report`, but a hostile report only costs the report."""
    try:
        return _delivery_report(msg, ctype, headers, senders, return_path, text, drafts)
    except Exception as exc:  # RecursionError and parser bugs included
        log.warning("reading a delivery status notification failed", exc_info=True)
        problems.append(f"delivery report unreadable ({type(exc).__name__})")
        return None


# --------------------------------------------------------------------------
# Whole mail
# --------------------------------------------------------------------------


def _build(msg: Message, mp_date: datetime | None, linesep: str, problems: list[str]) -> ParsedMail:
    """Assemble the ParsedMail from a parsed message tree."""
    headers, raw = _header_map(msg, problems)

    def addresses(name: str) -> tuple[Address, ...]:
        return _addresses(raw.get(name, []), name.title(), problems)

    from_all = addresses("from")
    sender_all = addresses("sender")
    if not from_all:
        problems.append("no usable From address")
    body = _walk(msg, linesep, problems)
    html_source = "\n".join(body.html)
    html = sanitise_html(html_source) if body.html else ""
    if any(part.strip() for part in body.plain):
        text = "\n".join(body.plain)
    else:
        text = html_to_text(html or html_source) if body.html else ""
    content_type = _content_type(msg)
    return_path = _return_path(headers.get("return-path"))
    report = _safe_delivery_report(
        msg,
        content_type,
        headers,
        (*from_all, *sender_all),
        return_path,
        text,
        body.drafts,
        problems,
    )
    return ParsedMail(
        subject=_collapse(headers.get("subject", "")),
        from_=from_all[0] if from_all else None,
        sender=sender_all[0] if sender_all else None,
        reply_to=addresses("reply-to"),
        to=addresses("to"),
        cc=addresses("cc"),
        message_id=next(iter(_message_ids(headers.get("message-id", ""))), ""),
        in_reply_to=_message_ids(headers.get("in-reply-to", "")),
        references=_message_ids(" ".join(_unfold(v)[0] for v in raw.get("references", []))),
        date=_parse_date(headers.get("date", ""), mp_date, problems),
        headers=headers,
        text=text,
        html=html,
        attachments=_finish_attachments(body.drafts, html_source),
        return_path=return_path,
        problems=_tidy_problems(problems),
        report=report,
        auth_results=tuple(_clean(_unfold(v)[0]) for v in raw.get("authentication-results", [])),
        content_type=content_type,
    )


def _tidy_problems(problems: list[str]) -> tuple[str, ...]:
    """Unique problem notes in order, at most MAX_PROBLEMS of them."""
    unique = list(dict.fromkeys(_clean(p) for p in problems))
    if len(unique) > MAX_PROBLEMS:
        hidden = len(unique) - MAX_PROBLEMS + 1
        unique = [*unique[: MAX_PROBLEMS - 1], f"... and {hidden} more problems"]
    return tuple(unique)


def _empty(problems: list[str]) -> ParsedMail:
    """A ParsedMail with nothing in it but the problems."""
    return ParsedMail(
        subject="",
        from_=None,
        sender=None,
        reply_to=(),
        to=(),
        cc=(),
        message_id="",
        in_reply_to=(),
        references=(),
        date=None,
        headers={},
        text="",
        html="",
        attachments=(),
        problems=_tidy_problems(problems),
    )


def _stdlib_message(raw: bytes, problems: list[str]) -> Message | None:
    """Parse with the stdlib alone; headers only if the body is too deep."""
    try:
        return email.message_from_bytes(raw)
    except RecursionError:
        problems.append("MIME structure nested too deeply; only the headers were read")
    except Exception as exc:  # noqa: BLE001 - reported as a problem instead
        problems.append(f"MIME structure unreadable ({type(exc).__name__}); only headers read")
    return _headers_only(raw)


def _headers_only(raw: bytes) -> Message | None:
    """The header block alone (no recursion, no body), None if even that fails."""
    try:
        return BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    except Exception:
        log.exception("even the header block of a mail could not be parsed")
        return None


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one raw mail; never raises.

    Whatever goes wrong is caught: the result then holds as much as could be
    read (falling back to the stdlib parser, then to the headers alone, then
    to an empty mail) and ``problems`` says what failed.
    """
    problems: list[str] = []
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        raw = bytes(raw)
    except Exception:  # noqa: BLE001 - not bytes-like: nothing to parse
        return _empty(["input is not bytes"])
    linesep = "\r\n" if b"\r\n" in raw[:_SNIFF_BYTES] else "\n"
    msg: Message | None = None
    mp_date: datetime | None = None
    try:
        parser = mailparser.parse_from_bytes(raw)
        msg, mp_date = parser.message, parser.date
    except (MailParserRecursionError, RecursionError):
        problems.append("MIME structure nested too deeply for mail-parser")
    except Exception as exc:  # a parser bug must not lose the mail
        log.warning("mail-parser failed, using the stdlib parser", exc_info=True)
        problems.append(f"mail-parser failed ({type(exc).__name__}); read with the stdlib parser")
    if msg is None:
        msg = _stdlib_message(raw, problems)
    if msg is None:
        return _empty(problems)
    try:
        return _build(msg, mp_date, linesep, list(problems))
    except Exception as exc:  # RecursionError included
        log.warning("reading a parsed mail failed, retrying with headers only", exc_info=True)
        problems.append(f"mail body could not be read ({type(exc).__name__}); only headers read")
    headers_only = _headers_only(raw)
    if headers_only is not None:
        headers_only.set_payload("")
        try:
            return _build(headers_only, None, linesep, problems)
        except Exception as exc:
            log.exception("even the headers of a mail could not be read")
            problems.append(f"headers could not be read ({type(exc).__name__})")
    return _empty(problems)


# --------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------

_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_KNOWN_HEADERS = frozenset(
    {
        b"from", b"to", b"cc", b"bcc", b"subject", b"date", b"message-id", b"received",
        b"return-path", b"mime-version", b"content-type", b"content-transfer-encoding",
        b"sender", b"reply-to", b"delivered-to", b"in-reply-to", b"references",
        b"dkim-signature", b"authentication-results", b"received-spf", b"arc-seal",
        b"x-original-to", b"envelope-to", b"resent-from", b"resent-to", b"resent-date",
        b"user-agent", b"x-mailer", b"thread-topic", b"thread-index", b"list-id",
        b"x-received", b"auto-submitted", b"precedence", b"importance", b"x-priority",
    }
)  # fmt: skip


def looks_like_mail(raw: bytes) -> bool:
    """Cheap check whether ``raw`` starts with an RFC 5322 header block.

    Used to reject junk (empty files, binaries, random text) before it
    becomes a ticket. Deliberately lenient about everything a real mail may
    get wrong (8-bit headers, missing From or Message-ID, no blank line
    after the headers), strict only about the shape: the first line (after
    blank lines and an mbox "From " line) must be a header field, and the
    header block must name at least one well-known header.
    """
    if not raw:
        return False
    head = bytes(raw[:_SNIFF_BYTES])
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    lines = head.splitlines()
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index < len(lines) and lines[index].startswith(b"From "):
        index += 1
    if index >= len(lines) or not _FIELD_LINE.match(lines[index]):
        return False
    for line in lines[index : index + 1000]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue  # folded continuation
        match = _FIELD_LINE.match(line)
        if match is None:
            break
        if line[: match.end() - 1].rstrip().lower() in _KNOWN_HEADERS:
            return True
    return False
