"""The walk over a mail's MIME tree: text and HTML bodies, attachments and
inline images, forwarded messages, lenient base64 and quoted-printable,
uuencode, and the defects the stdlib parser reports. Pure.
"""

from __future__ import annotations

import email
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from urllib.parse import unquote

from maildesk.mail.charset import _decode_base64_lenient, _decode_bytes, _short
from maildesk.mail.filenames import sanitise_filename
from maildesk.mail.headers import (
    _collapse,
    _decode_encoded_words,
    _decode_header,
    _strip_brackets,
    _unfold,
)
from maildesk.mail.text import clean
from maildesk.types import ParsedAttachment

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
    return clean(decoded).strip(), note or (notes[0] if notes else None)


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
    return clean(ctype).lower() if ctype.isascii() else "application/octet-stream"


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
        text = clean(text).replace("\r\n", "\n").replace("\r", "\n")
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
        cid = clean(draft.content_id)
        inline = bool(cid) and cid.lower() in referenced
        if draft.in_related and draft.disposition != "attachment":
            inline = inline or bool(cid) or draft.disposition == "inline"
        attachments.append(
            ParsedAttachment(
                filename=draft.filename,
                original_filename=clean(draft.original_filename),
                content_type=draft.content_type,
                payload=draft.payload,
                content_id=cid,
                inline=inline,
            )
        )
    return tuple(attachments)
