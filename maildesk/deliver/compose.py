"""Turn a rendered notification into the mail the worker sends.

:func:`compose` builds a multipart/alternative (text, then HTML; UTF-8,
7bit when ASCII, otherwise quoted-printable or base64 as the email package
finds shorter) with every header maildesk relies on; :func:`compose_bytes`
writes the very same bytes (``compose(...).as_bytes()``, by hand in
deliver/encode.py) without building
the EmailMessage, about ten times faster, and is what the worker sends:

- From with an RFC 2047 display name, To/Cc (an address in To is not
  repeated in Cc), Reply-To (the plus-address that threads back), Subject,
  Date (RFC 5322), Message-ID;
- In-Reply-To and References for threading: References keeps the given
  order (oldest first), ends with In-Reply-To, and is capped at
  :data:`MAX_REFERENCES` ids by keeping the first (the stable per-ticket
  reference that keeps the conversation together in Outlook and Gmail) and
  the newest;
- Thread-Topic and Thread-Index for Outlook's conversation view
  (:func:`thread_index`);
- Auto-Submitted when given (RFC 3834) and always
  ``X-Auto-Response-Suppress: All``: maildesk never wants auto-replies;
- files (an agent's attachments, a customer's files in an agent notice):
  multipart/mixed around the alternative; images that were inline in the
  agent's mail stay inline (multipart/related with the HTML, which shows
  them below the text). Mails with files are written by the email package.

Header values never carry a CR or LF: free text (subject, display names,
topic, extra header values) is flattened to one line, so "x\\r\\nBcc:
victim@…" stays a harmless subject; an address entry must parse as exactly
one address, and a Message-ID, Thread-Index or header name with a line
break is refused with ValueError.
Pure: the standard library's email package only; no database, no network.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from html import escape
from typing import Any

from maildesk.deliver.encode import POLICY, fold_header, make_boundary, multipart_header, text_part
from maildesk.deliver.render import Rendered

__all__ = ["MAX_REFERENCES", "OutgoingFile", "OutgoingMail", "compose", "compose_bytes",
           "thread_index"]

#: At most this many Message-IDs in References (first + newest).
MAX_REFERENCES = 20

_FIELD_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ":"
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}\Z")
_MSG_ID_TEXT = re.compile(r"^[!-;=?-~]{1,250}@[!-;=?-~]{1,250}\Z")  # no <, >, space
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+\Z")  # RFC 2045 token
_LINE_BREAKS = re.compile(r"[\r\n\x00\u2028\u2029\x85\x0b\x0c]+")
_OWN_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID",
        "In-Reply-To", "References", "Thread-Topic", "Thread-Index", "Auto-Submitted",
        "X-Auto-Response-Suppress", "MIME-Version", "Content-Type",
        "Content-Transfer-Encoding",
    )
)  # fmt: skip

# FILETIME counts 100 ns ticks since 1601-01-01 UTC.
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
# A fixed namespace: the same root key always gives the same thread GUID.
_THREAD_NAMESPACE = uuid.UUID("5b0c2f0e-6d1a-4c53-9a0e-6d61696c6465")


@dataclass(frozen=True)
class OutgoingFile:
    """A file that goes with the mail."""

    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True, kw_only=True)
class OutgoingMail:
    """What a notification mail says, before it is bytes: the one
    description both :func:`compose` and :func:`compose_bytes` write."""

    rendered: Rendered
    from_address: str
    from_name: str
    to: Sequence[str]
    cc: Sequence[str] = ()
    reply_to: str | None
    message_id: str
    in_reply_to: str | None
    references: Sequence[str]
    thread_topic: str
    thread_index: str | None
    auto_submitted: str | None
    date: datetime
    extra_headers: Mapping[str, str] | None = None
    attachments: Sequence[OutgoingFile] = ()


def compose(mail: OutgoingMail) -> EmailMessage:
    """The complete message, ready for ``smtplib.SMTP.send_message``.

    Addresses may be bare ("a@example.com") or with a name ("Erika
    <a@example.com>"). Message-IDs are given with or without <>. A naive
    ``date`` counts as UTC. Raises ValueError for an unusable address,
    Message-ID or extra header name, and when there is no recipient.
    """
    headers, text, html = _plan(mail)
    inline = [f for f in mail.attachments if _shown_inline(f)]
    inline_ids = [_content_id(f, n) for n, f in enumerate(inline)]
    if inline:
        html = _with_images(html, inline, inline_ids)
    msg = EmailMessage(policy=POLICY)
    for name, value in headers:
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    if inline:
        html_part = msg.get_payload()[1]
        for file, cid in zip(inline, inline_ids, strict=True):
            maintype, subtype = _split_type(file.content_type)
            html_part.add_related(file.data, maintype, subtype, cid=f"<{cid}>",
                                  disposition="inline", filename=file.filename)
    for file in mail.attachments:
        if not _shown_inline(file):
            maintype, subtype = _split_type(file.content_type)
            msg.add_attachment(file.data, maintype, subtype, filename=file.filename)
    _drop_inner_mime_version(msg)
    return msg


def _drop_inner_mime_version(msg: EmailMessage) -> None:
    """MIME-Version belongs to the top level only."""
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]


def _shown_inline(file: OutgoingFile) -> bool:
    return file.inline and file.content_type.lower().startswith("image/")


def _content_id(file: OutgoingFile, index: int) -> str:
    """The part's own Content-ID when it is a usable one, else a new one."""
    cid = file.content_id.strip().strip("<>")
    if cid and _MSG_ID_TEXT.match(cid):
        return cid
    digest = hashlib.sha256(file.data).hexdigest()[:16]
    return f"part{index}.{digest}@maildesk"


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.split(";", 1)[0].strip().lower().partition("/")
    if not maintype or not subtype or not _TOKEN.match(maintype) or not _TOKEN.match(subtype):
        return "application", "octet-stream"
    return maintype, subtype


def _with_images(html: str, files: Sequence[OutgoingFile], ids: Sequence[str]) -> str:
    """The HTML with the inline images shown below its content (the text
    the agent wrote is ours, re-rendered; where the images stood in the
    agent's own HTML is not kept)."""
    images = "".join(
        f'<p style="margin:0 0 16px;"><img src="cid:{escape(cid)}" alt="{escape(f.filename)}" '
        f'style="max-width:100%;height:auto;"></p>\n'
        for f, cid in zip(files, ids, strict=True))
    at = html.rfind("</body>")
    return html[:at] + images + html[at:] if at >= 0 else html + images


def compose_bytes(mail: OutgoingMail, boundary: str | None = None) -> bytes:
    """The bytes of ``compose(...).as_bytes()``, written directly.

    The same checks, the same headers in the same order, the same encodings
    and folding (tests compare both byte for byte), at a fraction of the
    cost: the email package parses every header it is given and folds it
    again when the message is flattened, which made composing the most
    expensive step of sending a notification. Header values that are plain
    ASCII are written as they are (folded at spaces when long); anything
    else (RFC 2047 words, quoting) is folded by the email package itself.
    ``boundary`` is for tests; by default it is random, as the email
    package makes it, and never occurs in the parts.
    """
    headers, text, html = _plan(mail)
    if mail.attachments or any(name.lower().startswith("content-") for name, _ in headers):
        # the email package moves such headers into the parts: let it
        message = compose(mail)
        if boundary is not None:
            message.set_boundary(boundary)
        return message.as_bytes()
    parts = [text_part("plain", text), text_part("html", html)]
    if boundary is None:
        boundary = make_boundary(parts)
    out = [fold_header(name, value) for name, value in headers]
    out.append("MIME-Version: 1.0\r\n")
    out.append(multipart_header(boundary))
    out.append("\r\n")
    delimiter = "--" + boundary
    out.append(delimiter + "\r\n")
    out.append(parts[0])
    for part in parts[1:]:
        out.append("\r\n" + delimiter + "\r\n")
        out.append(part)
    out.append("\r\n" + delimiter + "--\r\n")
    return "".join(out).encode("ascii")


def _plan(mail: OutgoingMail) -> tuple[list[tuple[str, Any]], str, str]:
    """The checked headers (name, value for the email package) in order,
    and the text and HTML bodies."""
    to_list = _addresses(mail.to, "To")
    seen = {a.addr_spec.lower() for a in to_list}
    cc_list = [a for a in _addresses(mail.cc, "Cc") if a.addr_spec.lower() not in seen]
    if not to_list and not cc_list:
        raise ValueError("a mail needs at least one recipient in To or Cc")

    headers: list[tuple[str, Any]] = [("From", _from_address(mail.from_name, mail.from_address))]
    if to_list:
        headers.append(("To", to_list))
    if cc_list:
        headers.append(("Cc", cc_list))
    if mail.reply_to:
        headers.append(("Reply-To", _addresses([mail.reply_to], "Reply-To")))
    headers.append(("Subject", _one_line(mail.rendered.subject)))
    headers.append(("Date", format_datetime(_aware(mail.date))))
    headers.append(("Message-ID", f"<{_msg_id(mail.message_id)}>"))
    parent = _optional_msg_id(mail.in_reply_to)
    if parent:
        headers.append(("In-Reply-To", f"<{parent}>"))
    chain = _references(mail.references, parent)
    if chain:
        headers.append(("References", " ".join(f"<{ref}>" for ref in chain)))
    topic = _one_line(mail.thread_topic)
    if topic:
        headers.append(("Thread-Topic", topic))
    if mail.thread_index:
        if not _BASE64.match(mail.thread_index):
            raise ValueError(f"Thread-Index is not base64: {mail.thread_index!r}")
        headers.append(("Thread-Index", mail.thread_index))
    if mail.auto_submitted:
        headers.append(("Auto-Submitted", _one_line(mail.auto_submitted)))
    headers.append(("X-Auto-Response-Suppress", "All"))
    for name, value in (mail.extra_headers or {}).items():
        if not _FIELD_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"header {name} is set by compose() itself")
        headers.append((name, _one_line(value)))
    return headers, _body(mail.rendered.text), _body(mail.rendered.html)


def thread_index(root_key: str, created: datetime, child_times: Sequence[datetime] = ()) -> str:
    """Outlook's Thread-Index (PidTagConversationIndex, [MS-OXOMSG] 2.2.1.3).

    A 22-byte header block – the upper 48 bits of the thread's creation time
    as a FILETIME, big-endian (the first byte is the spec's "reserved" 0x01
    for dates between 1829 and 2057), then a 16-byte GUID derived from
    ``root_key`` (a name-based UUID, so every mail of a ticket shares the
    header) – followed by one 5-byte response-level block per entry of
    ``child_times``: a 1-bit code and 31 bits of the time since the
    header's time (in units of 2**18 ticks ≈ 26 ms when under ~1.7 years,
    else 2**23 ticks ≈ 0.84 s, capped), then 8 bits derived from the root
    key and the position (deterministic, so a resend gives the same value).
    Returned base64-encoded, as Outlook writes it.
    """
    start = _filetime(created) >> 16
    header = start.to_bytes(6, "big") + uuid.uuid5(_THREAD_NAMESPACE, root_key).bytes
    blocks = []
    base = start << 16
    for position, moment in enumerate(child_times):
        delta = max(_filetime(moment) - base, 0)
        if delta >> 49 == 0:
            word = (delta >> 18) & 0x7FFFFFFF
        else:
            word = 0x80000000 | min(delta >> 23, 0x7FFFFFFF)
        tail = hashlib.md5(f"{root_key}\0{position}".encode(), usedforsecurity=False).digest()[0]
        blocks.append(word.to_bytes(4, "big") + bytes([tail]))
    return base64.b64encode(header + b"".join(blocks)).decode("ascii")


# -- helpers ------------------------------------------------------------------


def _one_line(value: object) -> str:
    """A header value without line breaks (header injection) or NULs."""
    return " ".join(_LINE_BREAKS.sub(" ", str(value or "")).split())


def _body(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


@functools.lru_cache(maxsize=64)
def _from_address(name: str, address: str) -> Address:
    """The sender (cached: the same for every mail)."""
    return Address(display_name=_one_line(name), addr_spec=_addr_spec(address))


def _addr_spec(value: str) -> str:
    found = _addresses([value], "From")
    if len(found) != 1:
        raise ValueError(f"invalid sender address {value!r}")
    return found[0].addr_spec


def _addresses(values: Sequence[str], field: str) -> list[Address]:
    if isinstance(values, str):
        values = [values]
    result: list[Address] = []
    seen: set[str] = set()
    for value in values:
        address = _address(value, field)
        if address.addr_spec.lower() not in seen:
            seen.add(address.addr_spec.lower())
            result.append(address)
    return result


@functools.lru_cache(maxsize=4096)
def _address(value: str, field: str) -> Address:
    """One entry as one Address (cached: the same support, reply and
    customer addresses come back with every mail; Address is immutable)."""
    # One entry is one address: a line break that would smuggle in a
    # second recipient ("a@x\r\nBcc: b@y") parses as two and is refused;
    # one inside a quoted display name just becomes a space.
    found = getaddresses([_one_line(value)])
    if len(found) != 1 or not found[0][1]:
        raise ValueError(f"not exactly one address in {field}: {value!r}")
    name, addr = found[0]
    if addr.count("@") != 1 or any(c in addr for c in " <>,;"):
        raise ValueError(f"invalid address in {field}: {value!r}")
    try:
        return Address(display_name=_one_line(name), addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"invalid address in {field}: {value!r} ({exc})") from None


def _msg_id(value: str) -> str:
    if _LINE_BREAKS.search(value):
        raise ValueError(f"line break in Message-ID {value!r}")
    ident = value.strip().removeprefix("<").removesuffix(">").strip()
    if not ident or "@" not in ident or any(c in ident for c in " <>\t"):
        raise ValueError(f"invalid Message-ID {value!r}")
    return ident


def _optional_msg_id(value: str | None) -> str | None:
    """An id from someone else's mail: a broken one is left out, not fatal."""
    try:
        return _msg_id(value) if value else None
    except ValueError:
        return None


def _references(references: Sequence[str], parent: str | None) -> list[str]:
    chain: list[str] = []
    for ref in references:
        ident = _optional_msg_id(ref)
        if ident and ident not in chain:
            chain.append(ident)
    if parent:
        if parent in chain:
            chain.remove(parent)
        chain.append(parent)  # RFC 5322 3.6.4: the parent's id comes last
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _filetime(moment: datetime) -> int:
    delta = _aware(moment) - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
