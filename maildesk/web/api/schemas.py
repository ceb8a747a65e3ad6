"""The API's data, as pydantic models: what handlers validate query
parameters with and what the OpenAPI document is written from (one source,
so the document cannot drift from the code). Keys and meanings are the
same as the CLI's `--json` (maildesk/views.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from maildesk.actions.intake import ADDRESS_PATTERN

Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
#: ISO 8601 with offset, passed on exactly as views.py writes it (the CLI's
#: --json and the API give the same text).
def matching(pattern: str) -> Any:
    """A string type checked with Python's `re` (as the actions check it),
    its pattern written into the document. pydantic's own `pattern` runs
    another regex engine, whose \\s and $ differ from Python's: the document
    could promise what the action then refuses."""
    compiled = re.compile(pattern.removesuffix("$") + r"\Z" if pattern.endswith("$")
                          else pattern)

    def check(value: str) -> str:
        if not compiled.search(value):
            raise ValueError(f"must match {pattern}")
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra={"pattern": pattern})]


#: Something besides white space (the actions refuse blank texts).
NOT_BLANK = ("[^ \t\n\r\f\v\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
             "\u205f\u3000]")  # what str.strip() removes, spelled out
#: The longest text a reply, note or new ticket takes through the API (in
#: characters; at most 4 bytes each, well inside the server's body limit).
TEXT_MAX = 100_000
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}"
                      r"([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?\Z")


class Person(BaseModel):
    email: str
    name: str


class Requester(Person):
    language: str
    confirmed: bool
    confirmed_at: Timestamp | None
    #: internal: a partner serving end customers of its own (2nd-level support).
    kind: Literal["external", "internal"]
    #: Automatic mail to the address is not sent: it bounced (since when, and
    #: what the bounce said); expires after notify.bounce_expiry_days.
    bouncing: bool = False
    bounced_at: Timestamp | None = None
    bounce_reason: str = ""


class EndCustomer(Person):
    language: str


class Participant(Person):
    role: str


class SlaLight(BaseModel):
    model_config = ConfigDict(extra="allow")
    state: str


class Ticket(BaseModel):
    number: int
    subject: str
    status: str
    request_type: str
    priority: str
    channel: str
    requester: Requester | None
    #: The partner's end customer the ticket is about (the requester is the
    #: partner); never mailed by the central support, told only of the close.
    end_customer: EndCustomer | None
    #: 1: the partner works it; 2: handed to the central support.
    support_level: Literal[1, 2]
    organisation: str | None
    participants: list[Participant]
    assignee: str | None
    group: str | None
    category: str | None
    subcategory: str | None
    language: str | None
    follow_up_of: int | None
    planned_version: str | None
    dev_item: str | None
    sla: SlaLight
    created_at: Timestamp | None
    updated_at: Timestamp | None
    first_response_at: Timestamp | None
    solved_at: Timestamp | None
    closed_at: Timestamp | None


class TicketPage(BaseModel):
    items: list[Ticket]
    #: Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None


class AttachmentInfo(BaseModel):
    """A stored file; its bytes at GET /attachments/{id}."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool


class MessageInfo(BaseModel):
    """A message of a ticket; its raw mail at GET /messages/{id}/raw when
    `inbound_id` is set (it came by mail)."""

    model_config = ConfigDict(extra="allow")

    id: int
    direction: Literal["in", "out", "internal"]
    author: str | None
    subject: str
    date: Timestamp | None
    message_id: str
    text: str
    text_display: str
    inbound_id: int | None
    attachments: list[AttachmentInfo]


class EventInfo(BaseModel):
    at: Timestamp
    actor: str
    field: str
    old: str | None
    new: str | None


class ThirdPartyInfo(BaseModel):
    """A third person asked for a statement (kind ask) or sent the ticket
    for information (forward); `answered_at` is set by their first answer
    from the address asked (kept as an internal note)."""

    id: int
    kind: Literal["ask", "forward"]
    to: str
    text: str
    actor: str
    created_at: Timestamp
    answered_at: Timestamp | None


class TicketDetail(Ticket):
    model_config = ConfigDict(extra="allow")
    messages: list[MessageInfo]
    events: list[EventInfo]
    third_party: list[ThirdPartyInfo] = Field(default_factory=list)


class UpdatedSince(BaseModel):
    """`updated_since`, for every list that has it."""

    updated_since: datetime | None = None

    @field_validator("updated_since", mode="before")
    @classmethod
    def _iso_only(cls, value: object) -> object:
        """ISO 8601 only: pydantic alone would take "0.5" as a Unix time."""
        if isinstance(value, str) and not ISO_DATE.match(value):
            raise ValueError("an ISO 8601 date-time, e.g. 2026-12-06T08:00:00Z")
        return value


class TicketQuery(UpdatedSince):
    """GET /tickets parameters."""

    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    q: str | None = Field(default=None, max_length=200, description="text search")
    sla: Literal["green", "yellow", "red"] | None = None
    assignee: str | None = Field(default=None, max_length=320,
                                 description='an agent\'s address, "me" or "none"')
    group: str | None = Field(default=None, max_length=200, description='a name or "none"')
    organisation: str | None = Field(default=None, max_length=255)
    requester: str | None = Field(default=None, max_length=320)
    request_type: Literal["user_help", "incident", "product_request", "urgent"] | None = None
    category: str | None = Field(default=None, max_length=100)
    channel: Literal["email", "phone", "web"] | None = None
    support_level: int | None = Field(default=None, ge=1, le=2,
                                      description="1: the partner's; 2: the central support's")
    requester_kind: Literal["external", "internal"] | None = Field(
        default=None, description="internal: the requester is a partner")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")


class NewRequester(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: matching(ADDRESS_PATTERN) = Field(max_length=320)
    name: str = Field(default="", max_length=200)


class TicketCreate(BaseModel):
    """POST /tickets: a ticket for a customer without an incoming mail."""

    model_config = ConfigDict(extra="forbid")
    requester: NewRequester
    subject: matching(NOT_BLANK) = Field(max_length=998)
    text: matching(NOT_BLANK) = Field(max_length=TEXT_MAX)
    channel: Literal["phone", "web", "email"] = "phone"
    request_type: Literal["user_help", "incident", "product_request", "urgent"] = "user_help"
    category: str | None = Field(default=None, max_length=100)
    #: Send the customer the acknowledgement (ticket number, reply address).
    acknowledge: bool = True
    #: The end customer the ticket is about, when the requester is an
    #: internal customer (a partner); found or created as a customer.
    end_customer: matching(ADDRESS_PATTERN) | None = Field(default=None, max_length=320)


class ReplyCreate(BaseModel):
    """POST /tickets/{number}/replies: a public answer to the customer."""

    model_config = ConfigDict(extra="forbid")
    text: matching(NOT_BLANK) = Field(max_length=TEXT_MAX)
    #: The solution mail (with the survey link); the ticket becomes solved.
    solve: bool = False


class Reply(BaseModel):
    number: int
    message_id: str
    reply_to: str
    status: str


class AskCreate(BaseModel):
    """POST /tickets/{number}/ask: ask a third person for a statement. They
    get the subject, the customer's messages and `text`, with a reply
    address of their own; their answer becomes an internal note."""

    model_config = ConfigDict(extra="forbid")
    to: matching(ADDRESS_PATTERN) = Field(max_length=320)
    text: matching(NOT_BLANK) = Field(max_length=TEXT_MAX)
    #: The mail's language; absent: the ticket's.
    language: Literal["de", "en"] | None = None


class ForwardCreate(BaseModel):
    """POST /tickets/{number}/forward: the ticket to someone for
    information (e.g. praise), with an optional text."""

    model_config = ConfigDict(extra="forbid")
    to: matching(ADDRESS_PATTERN) = Field(max_length=320)
    text: str = Field(default="", max_length=TEXT_MAX)
    language: Literal["de", "en"] | None = None


class ThirdPartyCreated(BaseModel):
    id: int
    number: int
    kind: Literal["ask", "forward"]
    to: str
    created_at: Timestamp
    reply_to: str


class NoteCreate(BaseModel):
    """POST /tickets/{number}/notes: internal, never sent to the customer."""

    model_config = ConfigDict(extra="forbid")
    text: matching(NOT_BLANK) = Field(max_length=TEXT_MAX)


_PARTICIPANT_ADDRESS = re.compile(ADDRESS_PATTERN.removesuffix("$") + r"\Z")


def _participant_address(value: str) -> str:
    if not _PARTICIPANT_ADDRESS.match(value):
        raise ValueError(f"{value[:80]!r} is not an e-mail address")
    return value.lower()


#: An address of a CC or follower (checked as `matching` does, with a
#: message a person reads), lower-cased.
ParticipantAddress = Annotated[str, AfterValidator(_participant_address),
                               Field(max_length=320,
                                     json_schema_extra={"pattern": ADDRESS_PATTERN})]
#: The most addresses one list of a change names (tickets/participants).
PARTICIPANTS_MAX = 50


class TicketChange(BaseModel):
    """PATCH /tickets/{number}: the fields to change (absent: unchanged;
    assignee/group "none" clears them; category "none" or null clears it).

    `category` is "Main" or "Main/Sub". The address lists change who is CC
    or follower (both get a copy of every public reply; either may thread a
    mail by its subject tag): adding an address already there in the other
    role moves it; adding one already there in that role changes nothing;
    removing one that is not there (or is there in the other role) is a 422
    naming it, so a mistyped address is never silently left receiving
    copies. One refused field changes nothing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    status: Literal["open", "pending", "on_hold", "solved", "closed"] | None = None
    priority: Literal["low", "normal", "high"] | None = None
    request_type: Literal["user_help", "incident", "product_request", "urgent"] | None = None
    assignee: str | None = Field(default=None, max_length=320)
    group: str | None = Field(default=None, max_length=200)
    planned_version: str | None = Field(default=None, max_length=100)
    dev_item: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=201,
                                 description='"Main" or "Main/Sub"; "none" or null clears it')
    add_cc: list[ParticipantAddress] | None = Field(default=None, max_length=PARTICIPANTS_MAX)
    remove_cc: list[ParticipantAddress] | None = Field(default=None,
                                                       max_length=PARTICIPANTS_MAX)
    add_followers: list[ParticipantAddress] | None = Field(default=None,
                                                           max_length=PARTICIPANTS_MAX)
    remove_followers: list[ParticipantAddress] | None = Field(default=None,
                                                              max_length=PARTICIPANTS_MAX)
    #: 2: hand a partner's ticket (internal requester) to the central
    #: support ([second_level] group is assigned and told); 1: back.
    support_level: Literal[1, 2] | None = None
    #: The partner's end customer (an address, found or created as a
    #: customer; only for an internal requester); "none" or null clears it.
    end_customer: str | None = Field(default=None, max_length=320,
                                     description='an address; "none" or null clears it')


class Changed(BaseModel):
    #: "field: old -> new", as `maildesk tickets set` prints them.
    changes: list[str]
    ticket: TicketDetail


class HeldMail(BaseModel):
    id: int
    reason: str
    detail: str | None
    sender: str | None
    subject: str
    ticket: int | None
    held_at: Timestamp | None
    received_at: Timestamp | None
    source: str
    message_id: str | None
    state: str
    resolved_at: Timestamp | None
    resolved_by: str | None
    result: str | None


class HeldPage(BaseModel):
    items: list[HeldMail]


class HeldQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=40)
    state: Literal["held", "recovered", "deleted", "purged"] = "held"
    limit: int = Field(default=200, ge=1, le=1000)


class Recovered(BaseModel):
    """What recovering made of a held mail (as `maildesk held recover`)."""

    model_config = ConfigDict(extra="allow")
    held: int
    action: str
    ticket: int | None
    reason: str | None


class OutboxRow(BaseModel):
    id: int
    #: None for a mail about no ticket (an announcement).
    ticket: int | None
    announcement: int | None = None
    kind: str
    state: str
    to: list[str]
    cc: list[str]
    language: str
    attempts: int
    message_id: str
    created_at: Timestamp | None
    sent_at: Timestamp | None
    next_attempt_at: Timestamp | None
    last_error: str | None


class OutboxPage(BaseModel):
    items: list[OutboxRow]


class OutboxQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["queued", "sending", "sent", "failed"] | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class Requeued(BaseModel):
    id: int
    #: The state the notification was in before it was queued again.
    was: str


class ProblemDocument(BaseModel):
    """RFC 9457."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
