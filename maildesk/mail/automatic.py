"""Is this mail automatic? Bounces, read receipts, auto-replies, system senders.

Pure functions over a :class:`~maildesk.types.ParsedMail`; the
pipeline (``classify.flag_automatic``) asks them in the order bounce, read
receipt, auto-reply, and the first answer wins. Each returns a short reason
for the ticket's event log, or None for mail a person wrote.

What a wrong answer costs decides how eager each rule is. Mail flagged as
automatic is never answered and never reopens a ticket, and when it belongs
to no ticket it is dropped (the raw mail is kept). So a false positive loses
a customer's request, while a false negative at worst sends one
acknowledgement to a robot: maildesk's own mail carries ``Auto-Submitted``,
which RFC 3834 responders respect, and a per-sender rate limit stops what is
left of a loop. Rules therefore trust what only machines write (RFC 3834
headers, list headers, RFC 3464/8098 reports), and are strict about subject
lines, which people write too.
"""

from __future__ import annotations

import re

from maildesk.types import ParsedMail

__all__ = ["auto_reply_reason", "bounce_reason", "is_noreply_address", "receipt_reason"]

# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------

#: Older headers of autoresponders (vacation, procmail, cPanel, ...); any
#: value but an explicit no means "sent by a machine".
_AUTORESPONDER_HEADERS = (
    ("x-autoreply", "X-Autoreply"),
    ("x-autorespond", "X-Autorespond"),
    ("x-autoresponder", "X-Autoresponder"),
)
_FALSE_VALUES = frozenset({"no", "false"})
#: Precedence values of bulk and list mail and of old-style auto replies
#: (RFC 2076; RFC 3834 section 2 asks responders to honour them).
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
#: Headers only mailing lists and newsletter systems set (RFC 2369, RFC 2919).
_LIST_HEADERS = (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe"))
#: Headers that are, on their own, weak evidence, because they also appear on
#: mail a person wrote (see auto_reply_reason). They count together with an
#: out-of-office phrase anywhere in the subject (_OOF_WORDS).
_WEAK_HEADERS = (
    ("x-auto-response-suppress", "X-Auto-Response-Suppress"),
    ("x-ms-exchange-inbox-rules-loop", "X-MS-Exchange-Inbox-Rules-Loop"),
)
_REPORT_TYPE = re.compile(r"""report-type\s*=\s*["']?([\w.-]+)""", re.IGNORECASE)
_DSN_REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})

# --------------------------------------------------------------------------
# Subjects
# --------------------------------------------------------------------------

#: Reply/forward prefixes (English, German, Nordic, French, Italian, with
#: Outlook's "AW[2]:" counters) and leading tags such as "[EXTERN]", which
#: gateways put in front of what the autoresponder wrote.
_SUBJECT_PREFIXES = re.compile(
    r"^(?:\s*(?:\[[^\]\n]{1,40}\]"
    r"|(?:re|aw|wg|fw|fwd|sv|vs|antw|antwort|tr|rif|r|i)\s*(?:\[\d+\]|\(\d+\))?\s*:))+\s*",
    re.IGNORECASE,
)
#: What may follow an out-of-office phrase at the start of a subject: a
#: colon ("Automatische Antwort: Ihre Anfrage"), a bracket, a dash, nothing,
#: or a date range without a question ("Abwesend bis 20.08."). Anything else
#: is a person writing about the feature ("Abwesenheitsnotiz einrichten").
_AFTER_PHRASE = (
    r"(?:\s*(?::|\(|[-–—](?:\s|$)|$)|\s+(?:re|aw|wg|fwd?)\s*:"
    r"|\s+(?:bis|vom|ab|until|till|from)\b[^?]*$)"
)
#: Subjects that autoresponders write, matched at the start of the subject
#: once reply prefixes are gone: Exchange / Outlook ("Automatische Antwort:",
#: "Automatic reply:", older "Abwesenheitsnotiz:" and "Out of Office
#: AutoReply:"), Gmail and webmail vacation responders (whatever the user
#: typed, most often one of these), Lotus Notes, and the French, Italian,
#: Spanish, Dutch and Nordic Exchange wordings. Sieve's default "Auto:" is
#: not here ("Auto: Unfallschaden" is a German car question); Sieve vacation
#: always sends Auto-Submitted, which catches it.
_OOF_SUBJECT_START = re.compile(
    r"(?:automatische antwort|automatic reply|automated reply|auto[- ]?reply|autoreply"
    r"|auto[- ]?response|autoresponder|auto[- ]?antwort"
    r"|abwesenheitsnotiz|abwesenheitsmeldung|abwesenheitsnachricht|abwesend"
    r"|out[- ]of[- ](?:the[- ])?office"
    r"(?:[ -]?(?:auto[- ]?reply|reply|notice|notification|message))?"
    r"|(?:i'?m|i am)(?: currently)? out of (?:the )?office"
    r"|vacation (?:auto[- ]?reply|reply|response|notice|message)|on vacation"
    r"|r[ée]ponse automatique(?: d'absence)?|risposta automatica|respuesta autom[áa]tica"
    r"|automatisch antwoord|automatisk svar|automaattinen vastaus)" + _AFTER_PHRASE,
    re.IGNORECASE,
)
#: Whole subjects in the first or third person that say someone is away:
#: "Ich bin bis 12.08. nicht im Büro", "Ich bin ab dem 3. Juni wieder
#: erreichbar", "Max Mustermann ist abwesend" (Lotus Notes), "John is out of
#: the office." A question or any further text makes it a person's subject
#: ("Ich bin nicht im Büro, wie komme ich an meine Mails?").
_OOF_SUBJECT_WHOLE = re.compile(
    r"^(?:ich bin (?:\S+\s+){0,6}?(?:nicht im büro|nicht erreichbar|abwesend|außer haus|im urlaub)"
    r"|ich bin ab (?:\S+\s+){1,5}?wieder"
    r" (?:im büro|im haus|erreichbar|da|zurück|für sie (?:da|erreichbar))"
    r"|.{0,60}\bist (?:nicht im büro|abwesend|außer haus)"
    r"|.{0,60}\b(?:is|am) out of (?:the )?office)"
    r"(?:\s+(?:bis|vom|ab|until|till|from)\b[^?]*)?\W{0,3}$",
    re.IGNORECASE,
)
#: "Urlaub" alone is a customer topic ("Frage zu Urlaubsregelung"); only with
#: these words next to it, and without a question mark, does it read as an
#: automatic absence notice ("Urlaub - automatische Antwort").
_VACATION = re.compile(r"urlaub", re.IGNORECASE)
_VACATION_COMPANIONS = re.compile(
    r"\babwesend\b|abwesenheits(?:notiz|meldung|nachricht)"
    r"|automatische (?:antwort|nachricht|benachrichtigung|mitteilung)",
    re.IGNORECASE,
)
#: Out-of-office phrases anywhere in a subject without a question mark
#: ("Re: Ihre Anfrage [Abwesenheitsnotiz]"): enough only together with one
#: of the weak Exchange headers (_WEAK_HEADERS).
_OOF_WORDS = re.compile(
    r"^[^?]*(?:abwesenheits(?:notiz|meldung|nachricht)|automatische antwort|automatic reply"
    r"|out of (?:the )?office|auto[- ]?reply|nicht im büro|r[ée]ponse automatique"
    r"|risposta automatica)[^?]*$",
    re.IGNORECASE,
)
#: Subjects of bounces (Postfix, Exim, qmail, Exchange, Gmail, Domino).
_BOUNCE_SUBJECT = re.compile(
    r"undeliver(?:ed|able)|unzustellbar|nicht zustellbar|delivery status notification"
    r"|mail delivery (?:failed|failure|system)|delivery failure|failure notice|returned mail"
    r"|zustellung fehlgeschlagen|non remis|delivery has failed|no entregado|non recapitabile"
    r"|mail could not be delivered|could not be delivered|onbestelbaar|niedostarczalne",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------

#: Local parts MTAs send bounces from (RFC 5321 postmaster, sendmail's and
#: Postfix's MAILER-DAEMON, qmail's and others' spellings).
_BOUNCE_SENDERS = frozenset(
    {"mailer-daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster"}
)
#: The same with separators removed, and the "Mail.Delivery.System@"
#: mailboxes some MTAs send from.
_BOUNCE_SENDERS_SQUEEZED = frozenset(
    {"mailerdaemon", "maildaemon", "postmaster", "maildeliverysystem",
     "maildeliverysubsystem"}
)
#: Exchange sends NDRs from "MicrosoftExchange" + 32 hex digits.
_EXCHANGE_SYSTEM_MAILBOX = re.compile(r"microsoftexchange[0-9a-f]{32}\Z")
#: Separators inside local parts: "no-reply", "no_reply", "do.not.reply",
#: "bounces+abc=example.org".
_LOCAL_SEPARATORS = re.compile(r"[-._+=]+")
#: Words (joined over up to three separated parts) that name a mailbox
#: nobody reads: "noreply", "no-reply", "do-not-reply", "donotreply1", ...
_NOREPLY_WORDS = re.compile(
    r"(?:no|donot|dont)(?:reply|replies|respond|response)\d*"
    r"|mailerdaemon|maildaemon|postmaster|notifications?",
)
#: Bounce (VERP) mailboxes: "bounce", "bounces", or bounce(s) with a
#: generated tail ("bounces+12345-abc=example.org", "bounce-mc.us1_42").
#: "bounce-back-rehab@" is a physiotherapy practice, not a robot.
_BOUNCE_WORDS = frozenset({"bounce", "bounces"})


def _local_part(address: str) -> str:
    address = address.strip().strip("<>").strip().lower()
    return address.rpartition("@")[0] if "@" in address else address


def is_noreply_address(address: str) -> bool:
    """True for mailboxes nothing automatic may ever be sent to.

    noreply / no-reply / no_reply / donotreply / do-not-reply (and
    "respond" variants), mailer-daemon, postmaster, notification(s), and
    bounce(s) mailboxes. Matching is on whole words of the local part, so
    that "norbert@", "bruno.reply@" or "bounce-back-rehab@" stay people.
    Mail to such an address bounces or lands in a mailbox nobody reads,
    and an automatic answer to one is how mail loops start.
    """
    local = _local_part(address)
    if not local:
        return False
    words = [word for word in _LOCAL_SEPARATORS.split(local) if word]
    for start in range(len(words)):
        for end in range(start + 1, min(start + 3, len(words)) + 1):
            if _NOREPLY_WORDS.fullmatch("".join(words[start:end])):
                return True
    if _BOUNCE_WORDS.intersection(words):
        # Alone, or with a generated (numbered or VERP-encoded) tail.
        return len(words) == 1 or "=" in local or any(c.isdigit() for c in local)
    return False


def is_bounce_sender(address: str) -> bool:
    """A mailer-daemon, postmaster or Exchange system mailbox (any domain,
    any case, any separator: "post_master@", "Mail.Delivery.System@"):
    the one list of bounce senders (mail/dsn.py asks it too)."""
    local = _local_part(address)
    squeezed = _LOCAL_SEPARATORS.sub("", local)
    return (local in _BOUNCE_SENDERS or squeezed in _BOUNCE_SENDERS_SQUEEZED
            or bool(_EXCHANGE_SYSTEM_MAILBOX.match(local)))


#: Display names of bounce senders that give no address at all: DragonFly's
#: and others' "MAILER-DAEMON <>", Exchange's "Postmaster <>", sendmail's
#: "Mail Delivery Subsystem <MAILER-DAEMON>" (no domain, so no address).
_BOUNCE_DISPLAY_NAME = re.compile(
    r'^\s*"?(?:mailer[-_ ]?daemon|post[-_ ]?master|mail delivery (?:sub)?system)"?\s*(?:<|$)',
    re.IGNORECASE,
)


def is_bounce_from_header(value: str) -> bool:
    """A From (or Sender) header that names a bounce sender without a
    usable address, which the address parser leaves empty."""
    value = value.strip()
    if _BOUNCE_DISPLAY_NAME.match(value):
        return True
    address = value.rpartition("<")[2].rstrip(">").strip() if "<" in value else value
    return bool(address) and is_bounce_sender(address)


def _report_type(mail: ParsedMail) -> str:
    """The report-type parameter of a multipart/report, lower-case, else ""."""
    if mail.content_type != "multipart/report":
        return ""
    match = _REPORT_TYPE.search(mail.header("content-type"))
    return match.group(1).lower() if match else ""


def _first_word(value: str) -> str:
    """'auto-replied (vacation); x=1' -> 'auto-replied'."""
    return re.split(r"[\s;(,]", value.strip(), maxsplit=1)[0].lower()


def _strip_subject_prefixes(subject: str) -> str:
    """The subject without "Re:", "AW:", "WG:", "Fwd:", "[EXTERN]", ..."""
    return _SUBJECT_PREFIXES.sub("", subject, count=1).strip()


def _out_of_office_subject(subject: str) -> bool:
    core = _strip_subject_prefixes(subject)
    if _OOF_SUBJECT_START.match(core) or _OOF_SUBJECT_WHOLE.match(core):
        return True
    return "?" not in core and bool(_VACATION.search(core) and _VACATION_COMPANIONS.search(core))


# --------------------------------------------------------------------------
# The three questions
# --------------------------------------------------------------------------


def bounce_reason(mail: ParsedMail) -> str | None:
    """Why this mail is a bounce (non-delivery or delay report), or None.

    * "delivery status notification": parse found a report (RFC 3464
      fields, or a bounce text from a bounce sender), or the mail is a
      multipart/report of type delivery-status even if nothing in it was
      readable. A delay warning or a success report counts too: none of them
      was written by a person.
    * "mailer-daemon sender": From or Sender is mailer-daemon, postmaster
      (any domain) or Exchange's MicrosoftExchange<hex> system mailbox.
      Whatever such a sender writes is the mail system talking.
    * "empty Return-Path": the null envelope sender (RFC 5321 section 4.5.5)
      is what bounces use, but auto-replies (RFC 3834 section 3.3) and read
      receipts use it as well. So alone it is a bounce only when another
      sign agrees (a bounce subject) or there is no person to have written
      the mail (no From, or a noreply-like From). With a person's From it
      is left to :func:`receipt_reason` and :func:`auto_reply_reason`, so
      that an out-of-office reply is not recorded as a bounce.
    """
    if mail.report is not None or _report_type(mail) in _DSN_REPORT_TYPES:
        return "delivery status notification"
    if mail.headers.get("x-failed-recipients", "").strip():
        return "X-Failed-Recipients"
    for address in (mail.from_, mail.sender):
        if address is not None and is_bounce_sender(address.email):
            return "mailer-daemon sender"
    for name in ("from", "sender"):
        if is_bounce_from_header(mail.headers.get(name, "")):
            return "mailer-daemon sender"
    if mail.return_path and is_bounce_sender(mail.return_path):
        return "mailer-daemon Return-Path"
    if mail.return_path == "":
        if _BOUNCE_SUBJECT.search(_strip_subject_prefixes(mail.subject)[:60]) and not (
                _SUBJECT_PREFIXES.match(mail.subject)):
            return "empty Return-Path"
        if mail.from_ is None:
            return "empty Return-Path"
        if is_noreply_address(mail.from_.email) and _first_word(
                mail.headers.get("auto-submitted", "")) != "auto-replied":
            # An autoresponder says auto-replied; a bounce from a noreply
            # system would have been read as a report above.
            return "empty Return-Path"
    return None


def receipt_reason(mail: ParsedMail) -> str | None:
    """Return "read receipt" for a message disposition notification (RFC 8098).

    A multipart/report of type disposition-notification, or any mail that
    carries a message/disposition-notification part. Receipts are recorded
    on their ticket, but a person opening a mail is no reason to reopen or
    answer anything.
    """
    if _report_type(mail) == "disposition-notification":
        return "read receipt"
    if any(a.content_type == "message/disposition-notification" for a in mail.attachments):
        return "read receipt"
    return None


def auto_reply_reason(mail: ParsedMail) -> str | None:
    """Why this mail is an automatic reply, bulk or list mail, or None.

    Such mail must never be answered (RFC 3834 section 2) and never reopen
    a ticket. Trusted on their own, because people's mail programs do not
    set them:

    * ``Auto-Submitted`` with any value but "no" (RFC 3834);
    * ``X-Autoreply`` / ``X-Autorespond`` / ``X-Autoresponder`` unless
      "no"/"false";
    * ``Precedence: bulk / junk / list / auto_reply``;
    * ``List-Id`` or ``List-Unsubscribe`` (mailing lists, newsletters;
      note that a customer writing from a Google Groups team address is a
      list too);
    * ``X-Loop`` (set by procmail, ticket systems and list servers on what
      they send);
    * ``X-MS-Exchange-Generated-Message-Source``: Exchange created the mail
      itself (rule replies, journal and transport rule reports);
    * an out-of-office subject (see _OOF_SUBJECT_START, _OOF_SUBJECT_WHOLE;
      German "Urlaub" only next to "abwesend", "Abwesenheitsnotiz" or
      "automatische Antwort");
    * ``Return-Path: <>`` (RFC 3834 section 3.3 tells responders to use the
      null sender; people's mail never has it).

    Not trusted on their own, only together with an out-of-office phrase
    anywhere in the subject (_OOF_WORDS):

    * ``X-Auto-Response-Suppress``. SPEC section 5 lists it, and Exchange
      does put "All" on its out-of-office replies, but the header asks the
      *receiver* not to auto-reply, and Exchange and Outlook also set it on
      ordinary mail (meeting requests, mail expanded from distribution
      lists, "DR, OOF, AutoReply" from some clients). Helpdesks that trusted
      it lost real mail and removed it (Jitbit's blog, osTicket PR 5320,
      GLPI issue 2170, Redmine 19558, Discourse PR 21367). Exchange's own
      auto-replies also carry ``Auto-Submitted: auto-generated``, so they
      are caught anyway.
    * ``X-MS-Exchange-Inbox-Rules-Loop``: Exchange adds it to auto-replies
      but also to mail a customer's inbox rule forwards or redirects to
      support, which is a person's mail.

    ``Feedback-ID`` is no signal at all: mail services put it on every
    mail they relay, personal mail included.
    """
    headers = mail.headers
    value = headers.get("auto-submitted")
    if value is not None and _first_word(value) != "no":
        return f"Auto-Submitted: {_first_word(value) or '(empty)'}"
    for name, label in _AUTORESPONDER_HEADERS:
        value = headers.get(name)
        if value is not None and _first_word(value) not in _FALSE_VALUES:
            return label
    precedence = _first_word(headers.get("precedence", ""))
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name, label in _LIST_HEADERS:
        if name in headers:
            return label
    if "x-loop" in headers:
        return "X-Loop"
    if headers.get("x-ms-exchange-generated-message-source", "").strip():
        return "X-MS-Exchange-Generated-Message-Source"
    if _out_of_office_subject(mail.subject):
        return "out-of-office subject"
    for name, label in _WEAK_HEADERS:
        if headers.get(name, "").strip() and _OOF_WORDS.search(mail.subject):
            return f"{label} + out-of-office subject"
    if mail.return_path == "":
        return "Return-Path: <>"
    return None
