"""Turn one raw mail into a :class:`~maildesk.types.ParsedMail`.

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

So the walk over the MIME tree and all decoding happen in maildesk, on the
``email.message.Message`` that mail-parser built, split along its seams:
mail/charset.py (bytes to text), mail/headers.py (fields, addresses, ids,
dates), mail/mime.py (the MIME walk), mail/dsn.py (delivery reports). This
module puts them together and never raises.
"""

from __future__ import annotations

import codecs
import email
import email.utils
import logging
import re
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

import mailparser
from mailparser.exceptions import MailParserRecursionError

from maildesk.mail.dsn import _safe_delivery_report
from maildesk.mail.headers import (
    _addresses,
    _collapse,
    _header_map,
    _message_ids,
    _parse_date,
    _return_path,
    _unfold,
)
from maildesk.mail.htmlsafe import html_to_text, sanitise_html
from maildesk.mail.mime import _content_type, _finish_attachments, _walk
from maildesk.mail.text import clean
from maildesk.types import Address, ParsedMail

__all__ = ["looks_like_mail", "parse_mail"]

log = logging.getLogger(__name__)

#: At most this many problems are kept; a hostile mail must not flood the
#: ticket with notes.
MAX_PROBLEMS = 30
#: looks_like_mail() only inspects the start of the input.
_SNIFF_BYTES = 64 * 1024

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
        auth_results=tuple(clean(_unfold(v)[0]) for v in raw.get("authentication-results", [])),
        content_type=content_type,
    )


def _tidy_problems(problems: list[str]) -> tuple[str, ...]:
    """Unique problem notes in order, at most MAX_PROBLEMS of them."""
    unique = list(dict.fromkeys(clean(p) for p in problems))
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


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S{1,200})", re.IGNORECASE | re.MULTILINE)


def _fallback(what: str, exc: BaseException, raw: bytes) -> None:
    """A handled fallback is one line at WARNING, with the reason and the
    mail's Message-ID; the traceback is for DEBUG (`maildesk import
    --verbose`): ops read a traceback at WARNING as a crash, and the mail
    was kept and its problem noted on the ticket."""
    found = _MESSAGE_ID.search(raw[:_SNIFF_BYTES])
    mail_id = found.group(1).decode("ascii", "replace") if found else "(no Message-ID)"
    log.warning("%s: %s: %s (mail %s)", what, type(exc).__name__,
                str(exc)[:200] or "no detail", mail_id)
    log.debug("the traceback of that fallback", exc_info=exc)


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
    except Exception as exc:  # noqa: BLE001 — a parser bug must not lose the mail
        _fallback("mail-parser failed, read with the stdlib parser", exc, raw)
        problems.append(f"mail-parser failed ({type(exc).__name__}); read with the stdlib parser")
    if msg is None:
        msg = _stdlib_message(raw, problems)
    if msg is None:
        return _empty(problems)
    try:
        return _build(msg, mp_date, linesep, list(problems))
    except Exception as exc:  # noqa: BLE001 — RecursionError included
        _fallback("reading the parsed mail failed, only its headers are read", exc, raw)
        problems.append(f"mail body could not be read ({type(exc).__name__}); only headers read")
    headers_only = _headers_only(raw)
    if headers_only is not None:
        headers_only.set_payload("")
        try:
            return _build(headers_only, None, linesep, problems)
        except Exception as exc:  # noqa: BLE001 — logged by _fallback
            _fallback("even the headers could not be read, the mail is kept as raw bytes",
                      exc, raw)
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
