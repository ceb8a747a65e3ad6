"""Plain data that flows through the ingest pipeline.

Everything here is a frozen dataclass or a Protocol so that pipeline steps
stay pure functions, testable with dict fakes and no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Address:
    """One mailbox: lower-cased address plus the decoded display name."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass(frozen=True)
class ParsedAttachment:
    """An attachment or inline part, payload already decoded to bytes.

    `filename` is the sanitised name that is safe to show and to use in a
    Content-Disposition; `original_filename` keeps what the sender wrote.
    """

    filename: str
    original_filename: str
    content_type: str
    payload: bytes
    content_id: str = ""
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(frozen=True)
class DeliveryReport:
    """What a delivery status notification (RFC 3464 DSN) says.

    `failed` are the final recipients whose Action is "failed" (lower-case
    addresses); `original_message_id` is the Message-ID of the mail that
    bounced, from the returned headers (message/rfc822 or
    text/rfc822-headers part), without angle brackets, "" when absent.
    """

    failed: tuple[str, ...] = ()
    delayed: tuple[str, ...] = ()
    original_message_id: str = ""
    status: str = ""  # the first Status code seen, e.g. "5.1.1"


@dataclass(frozen=True)
class ParsedMail:
    """What maildesk needs to know of one raw mail.

    `problems` lists what the parser had to repair or could not read (bad
    charset, broken base64, unparsable header); the ticket shows them as a
    note so that an agent knows to look at the raw mail.
    """

    subject: str
    from_: Address | None
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    message_id: str  # without angle brackets, "" when missing
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    headers: dict[str, str]  # lower-cased names, decoded, first occurrence
    text: str  # full plain text (a rendering of the HTML when only HTML)
    html: str  # sanitised HTML, "" when there is none
    attachments: tuple[ParsedAttachment, ...]
    return_path: str | None = None  # None: header absent; "": Return-Path <>
    problems: tuple[str, ...] = ()
    report: DeliveryReport | None = None  # set for multipart/report DSNs
    content_type: str = ""  # the top-level type, e.g. "multipart/report"
    #: every Authentication-Results header (RFC 8601), topmost first
    auth_results: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class ThirdPartyInfo:
    """A request to a third person (ask/forward) an answer refers to."""

    id: int
    ticket: int  # the ticket's number
    email: str  # whom it was sent to
    kind: str = "ask"


@dataclass(frozen=True)
class TicketInfo:
    """What threading and the lifecycle need to know of an existing ticket."""

    number: int
    status: str
    subject: str


class Lookup(Protocol):
    """Read-only questions pipeline steps may ask of the store."""

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        """Number of the ticket that holds a mail with one of these ids."""

    def organisation_for_domain(self, domain: str) -> int | None:
        """Id of the organisation that owns this mail domain."""

    def ticket(self, number: int) -> TicketInfo | None:
        """The ticket with this number, None when there is none."""

    def is_participant(self, number: int, email: str) -> bool:
        """Requester, CC/follower, or main contact/admin of its organisation."""

    def mails_from_since(self, email: str, since: datetime) -> int:
        """How many mails this sender sent us since `since` (rate limit)."""

    def is_our_outgoing(self, message_id: str) -> bool:
        """True when maildesk sent a mail with this Message-ID."""

    def third_party_request(self, request_id: int) -> ThirdPartyInfo | None:
        """The third_party_request row with this id, None when there is none."""


@dataclass(frozen=True)
class Route:
    """What a recipient address decides for a new ticket."""

    request_type: str = "user_help"
    category: str | None = None
    subcategory: str | None = None
    group: str | None = None
    priority: str | None = None


#: Every action a Triage can end with (the service has one apply per action).
ACTIONS = ("create", "append", "reopen", "followup", "note", "hold", "ignore", "reject",
           "statement")
#: Actions after which no further step runs.
FINAL_ACTIONS = frozenset({"ignore", "reject", "note", "hold", "statement"})


@dataclass(frozen=True)
class Triage:
    """The pipeline's verdict on one mail; only the service acts on it.

    action: "create" (a new ticket), "append" (to `ticket`), "reopen",
    "followup" (a new ticket linked to the closed `ticket`), "note" (kept on
    `ticket` as an internal note, nothing else happens), "hold" (kept for a
    person to recover or delete: an agent's address without proof, a DMARC
    failure), "statement" (a third person's answer, or a mail from someone
    who takes no part in the ticket, through one of its signed references:
    an internal note, the agent told; never public, never reopening),
    "ignore" or "reject". Steps flag; the last word is the action field. `reason` is a
    short code (auto_reply, bounce, loop, rate_limited, blocked, …) and
    `detail` the human sentence behind it.
    """

    action: str = "create"
    reason: str | None = None
    detail: str | None = None
    ticket: int | None = None
    thread_via: str | None = None  # header / our_message_id / token / body / subject
    classification: str | None = None  # auto_reply / bounce / receipt
    sender_role: str = "customer"  # customer / agent
    new_status: str | None = None
    bounced: tuple[str, ...] = ()
    requester: Address | None = None
    route: Route = field(default_factory=Route)
    priority: str = "low"
    organisation_domain: str | None = None
    participants: tuple[Address, ...] = ()
    notes: tuple[str, ...] = ()
    #: how the sender was proven, shown on the message ("" = not checked)
    authenticity: str = ""
    #: the request to a third person this mail answers (thread_via "third_party")
    third_party: ThirdPartyInfo | None = None

    def but(self, **changes: object) -> Triage:
        """A copy with some fields changed (steps never mutate)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def final(self) -> bool:
        return self.action in FINAL_ACTIONS


@dataclass(frozen=True)
class Context:
    """Settings-derived plain data the steps need, built once per process.

    `our_addresses` are the support addresses (lower-case, without plus
    parts); `recipients` are the envelope recipients of this mail, when the
    channel knows them (SMTP RCPT, the pipe's --recipient).
    """

    our_addresses: frozenset[str]
    routes: dict[str, Route] = field(default_factory=dict)
    free_mail_domains: frozenset[str] = frozenset()
    recipients: tuple[str, ...] = ()
    envelope_from: str | None = None
    secret: bytes = b""
    subject_tag: str = "[#{number}]"
    agents: frozenset[str] = frozenset()
    blocked_senders: frozenset[str] = frozenset()
    rate_limit_count: int = 20
    rate_limit_window: timedelta = timedelta(minutes=10)
    now: datetime | None = None
    #: authserv-ids whose Authentication-Results count (security.trusted_authserv_ids)
    trusted_authserv_ids: frozenset[str] = frozenset()
    #: a person recovers this held mail: the filters that held it stand aside
    recovered_by: str | None = None

    def is_ours(self, address: str) -> bool:
        """True for a support address and its plus-forms (support+x@…)."""
        local, _, domain = address.lower().partition("@")
        return f"{local.split('+', 1)[0]}@{domain}" in self.our_addresses

    def base_address(self, address: str) -> str:
        local, _, domain = address.lower().partition("@")
        return f"{local.split('+', 1)[0]}@{domain}"
