"""Delivery status notifications (RFC 3464 reports and plain-text bounces):
who failed, with which status, for which of our messages. The bounce
sender names live in mail/automatic.py (one home). Pure.
"""

from __future__ import annotations

import logging
import re
from email.message import Message

from maildesk.mail.automatic import (
    _BOUNCE_SUBJECT,
    _SUBJECT_PREFIXES,
    is_bounce_from_header,
    is_bounce_sender,
    is_noreply_address,
)
from maildesk.mail.charset import _guess_decode
from maildesk.mail.headers import _COMMENT, _message_ids, _unfold
from maildesk.mail.mime import _MESSAGE_CONTAINERS, _content_type, _Draft, _header_str, _param
from maildesk.mail.text import clean
from maildesk.types import Address, DeliveryReport

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Delivery status notifications (bounces)
# --------------------------------------------------------------------------

# RFC 3464 / RFC 6533 parts: the machine-readable report and the returned
# headers of the mail that bounced (message/rfc822 is in _MESSAGE_CONTAINERS).
_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_RETURNED_HEADER_PARTS = frozenset({"text/rfc822-headers", "message/global-headers"})
_DSN_REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})
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
    r"|not yet been delivered|this is a warning only"
    r"|delivery failure|unable to deliver|was not able to deliver|wasn't able to deliver"
    r"|error has occurred while attempting to deliver|non remis|no entregado|non recapitabile",
    re.IGNORECASE,
)
#: MTA boilerplate that no person writes at the top of a mail: enough,
#: with a bounce subject that is no reply or forward, when the sender
#: gives nothing away (sendmail, DragonFly, GroupWise, Lotus Notes,
#: Exchange 2003/2007 in several languages, Google, Apache James, ...).
_BOUNCE_BOILERPLATE = re.compile(
    r"the following addresses had (?:permanent fatal errors|delivery problems)"
    r"|transcript of session follows|there was an error delivering your mail to"
    r"|delivery to the following recipients? (?:failed|has been delayed)"
    r"|this is an automatically generated delivery status notification"
    r"|(?:was|were) undeliverable to the following|did not reach (?:some or all|the following)"
    r"|the following recipient\(s\) could not be reached|was not delivered to:"
    r"|delivery has failed to these recipients|this is the mail system at host"
    r"|created automatically by mail delivery software|this is the qmail-send program"
    r"|die zustellung an folgende empfänger|n'a pas pu être remis|error al entregar el mensaje"
    r"|impossibile recapitare|could not be delivered to:|error: invalid user address",
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
    r"|-+ ?original message|original message:?[ \t]*$|message headers follow"
    r"|-+ ?unsent message follows|possibly truncated original message follows"
    r"|-+ ?original message follows"
    r"|(?:received|return-path|dkim-signature|reporting-mta|final-recipient|message-id)[ \t]*:"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS = r"[^\s<>()\[\]\"'@,;:]+@[^\s<>()\[\]\"'@,;:]+"
#: Lines that name a failed recipient in a text bounce.
_FAILED_ADDRESS_PATTERNS = (
    # Postfix, qmail: "<bob@example.org>: reason", "<bob@…> (expanded from <info@…>): …"
    # OpenSMTPD: "bob@example.org: 550 5.1.1 ..."
    re.compile(rf"^<?({_ADDRESS})>?(?:[ \t]*\(expanded from <({_ADDRESS})>\))?[ \t]*:", re.M),
    # Exim ("  bob@example.org" under "failed:"), Exchange, Gmail, GroupWise,
    # Notes: the address alone on its line (a bullet, quotes, "on <date>",
    # "(reason)" or "[reason]" may follow)
    re.compile(
        rf"^[ \t]*(?:[*•-]+[ \t]*|>>>[ \t]*)?\"?<?({_ADDRESS})>?\"?"
        rf"(?:[ \t]*<mailto:[^>\n]*>)?[ \t]*(?::|[ \t](?:on|\(|\[|<|invalid)[^\n]*)?[ \t]*$",
        re.M | re.IGNORECASE,
    ),
    # sendmail transcripts: "550 5.1.1 <bob@example.org>... User unknown"
    re.compile(rf"^[45]\d\d[ -](?:[45]\.\d{{1,3}}\.\d{{1,3}} )?<({_ADDRESS})>\.\.\.", re.M),
    # DragonFly, KDDI, iMail, Apache James: "... delivering your mail to <bob@…>",
    # "Could not be delivered to: <bob@…>", "Unknown user: bob@…", "RCPT TO: bob@…"
    re.compile(
        rf"(?:delivering your mail to|could not be delivered to:|unknown user:|^[ \t]*rcpt to:)"
        rf"[ \t]*<?({_ADDRESS})>?",
        re.IGNORECASE | re.M,
    ),
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


def _may_be_bounce(
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
    if return_path and is_bounce_sender(return_path):
        return True
    if any(is_bounce_from_header(headers.get(name, "")) for name in ("from", "sender")):
        return True
    subject = headers.get("subject", "")
    if any(is_noreply_address(address.email) for address in senders):
        return True  # KDDI and others send bounces from a no-reply address
    if _BOUNCE_SUBJECT.search(subject) and not _SUBJECT_PREFIXES.match(subject):
        return True  # _text_bounce then wants MTA boilerplate, see _from_system
    return any(is_bounce_sender(address.email) for address in senders)


def _from_system(
    senders: tuple[Address, ...], return_path: str | None, headers: dict[str, str]
) -> bool:
    """Whether the envelope or From say a mail system sent this; if not,
    only MTA boilerplate (not bounce words a person may use) makes a bounce."""
    if return_path == "" or (return_path and is_bounce_sender(return_path)):
        return True
    if "x-failed-recipients" in headers or "x-ms-exchange-message-is-ndr" in headers:
        return True
    if any(is_bounce_from_header(headers.get(name, "")) for name in ("from", "sender")):
        return True
    return any(is_bounce_sender(address.email) for address in senders)


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
    return clean(value) if "@" in value and len(value) <= _MAX_ADDRESS_LENGTH else ""


def _first_message_id(text: str) -> str:
    """The id of the first Message-ID line in a block of returned headers."""
    match = _MESSAGE_ID_LINE.search(text)
    return next(iter(_message_ids(match.group(1))), "") if match else ""


def _text_bounce(
    subject: str, text: str, own: set[str], system: bool = True
) -> tuple[list[str], bool, str] | None:
    """Failed addresses, whether it is a delay warning, and the status code
    of a bounce written for humans; None when the text does not read like
    one. Only the part above the returned copy of the original is read.
    Mail that does not come from a mail system (`system`) needs MTA
    boilerplate near the top: a customer writing "undeliverable" is none."""
    head = text[:_BOUNCE_TEXT_LIMIT]
    if not system:
        if not _BOUNCE_BOILERPLATE.search(head[:2000]):
            return None
    elif not (_BOUNCE_PHRASES.search(subject) or _BOUNCE_PHRASES.search(head)
              or _BOUNCE_BOILERPLATE.search(head)):
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
            addresses.append(clean(address))
    if not addresses and cut:
        # Nothing named above the returned copy: its one To is the address.
        addresses = [a for a in _returned_to(head[cut.start():]) if a not in own]
    codes = _STATUS_CODE.findall(section)
    replies = _REPLY_CODE.findall(section)
    status = next((c for c in codes if c[0] == "5"), codes[0] if codes else "")
    if status:
        transient = status[0] == "4"
    else:
        transient = bool(replies) and all(r[0] == "4" for r in replies)
    if _PERMANENT_PHRASES.search(section):
        transient = False  # qmail: "(#4.4.1) ... permanent error; I've given up"
    delay = bool(_DELAY_PHRASES.search(section)) or transient
    return addresses, delay, status


#: Words of an MTA that gave up for good, whatever the last reply code was.
_PERMANENT_PHRASES = re.compile(
    r"permanent (?:fatal )?error|(?:i'?ve|have) given up|giving up|failed permanently"
    r"|not going to try again",
    re.IGNORECASE,
)


#: An SMTP reply code in running text ("said: 550", "421 example.com ...").
_REPLY_CODE = re.compile(r"(?:^|said:|[ \t:])([45][0-5]\d)(?:[ -](?=\S)|$)", re.M)
_TO_LINE = re.compile(r"^to:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def _returned_to(text: str) -> list[str]:
    """The address of the returned copy's To, when it names exactly one."""
    match = _TO_LINE.search(text[:8192])
    if not match:
        return []
    found = re.findall(_ADDRESS, match.group(1))
    if len(found) != 1 or len(found[0]) > _MAX_ADDRESS_LENGTH:
        return []
    return [clean(found[0].strip("<>.").lower())]


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
    sender (see :func:`_may_be_bounce`) whose wording reads like a bounce
    is read as text: Exim, Postfix, qmail, Exchange and Office 365 each list
    the failed addresses in their own layout. Read receipts and other
    reports give None.

    `failed` are permanent failures only (the pipeline marks them
    bouncing): a recipient with a 4.x.x status, even under Action: failed,
    or a text bounce whose codes are all 4xx and that does not say it gave
    up for good, is put in `delayed` and marks nobody.
    """
    report_type = ""
    if ctype == "multipart/report":
        report_type = _param(msg, "report-type", "content-type")[0].lower()
        if report_type == "disposition-notification":
            return None  # a read receipt (RFC 8098), sent with <> like a bounce
    structured = report_type in _DSN_REPORT_TYPES or any(
        draft.content_type in _DSN_PARTS for draft in drafts
    )
    if not structured and not _may_be_bounce(senders, return_path, headers):
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
                code = (fields.get("status", "").split() or [""])[0]
                if action == "failed" and code.startswith("4"):
                    action = "delayed"  # a transient failure (RFC 3463 4.x.x) marks nobody
                target = {"failed": failed, "delayed": delayed}.get(action)
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
        own.update(a.lower() for a in re.findall(_ADDRESS, headers.get("to", "")))
        in_text = _text_dsn(text)
        found = None if in_text else _text_bounce(
            headers.get("subject", ""), text, own,
            system=structured or _from_system(senders, return_path, headers))
        if (found is None and in_text is None and not structured
                and "x-failed-recipients" not in headers):
            return None
        if in_text is not None:
            failed.extend(in_text[0])
            delayed.extend(in_text[1])
            status = in_text[2]
        if found is not None:
            addresses, is_delay, status = found
            (delayed if is_delay else failed).extend(addresses)
    for address in _failed_recipients_header(headers.get("x-failed-recipients", "")):
        if address not in failed and address not in delayed:
            failed.append(address)
    if not original:
        cut = _RETURNED_COPY.search(text[:_BOUNCE_TEXT_LIMIT])
        original = _first_message_id(text[cut.start() :] if cut else "") or reported_id
    return DeliveryReport(
        failed=tuple(failed[:_MAX_REPORT_ADDRESSES]),
        delayed=tuple([a for a in delayed if a not in failed][:_MAX_REPORT_ADDRESSES]),
        original_message_id=clean(original),
        status=clean(status),
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


_TEXT_DSN_FIELD = re.compile(r"^final-recipient[ \t]*:", re.IGNORECASE | re.MULTILINE)


def _text_dsn(text: str) -> tuple[list[str], list[str], str] | None:
    """RFC 3464 fields written into a text part (old MTAs and gateways that
    lose the message/delivery-status type): failed addresses, and the
    status of the first; delayed and 4.x.x recipients are not failures.
    None when the text carries no such fields."""
    head = text[:_BOUNCE_TEXT_LIMIT]
    if not _TEXT_DSN_FIELD.search(head):
        return None
    failed: list[str] = []
    later: list[str] = []
    status = ""
    for chunk in _BLANK_LINE.split(head):
        fields: dict[str, str] = {}
        for line in chunk.splitlines():
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            if colon and name and name not in fields:
                fields[name] = value.strip()
        address = _dsn_address(fields.get("original-recipient", "")) or _dsn_address(
            fields.get("final-recipient", ""))
        action = (fields.get("action", "").split() or [""])[0].lower()
        code = (fields.get("status", "").split() or [""])[0]
        if address and action in ("failed", "delayed") and (
                action == "delayed" or code.startswith("4")):
            if address not in later:
                later.append(address)
            continue
        if not address or action != "failed":
            continue
        status = status or code
        if address not in failed:
            failed.append(address)
    if not failed and not later:
        return None
    return failed, later, status
