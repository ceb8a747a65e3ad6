"""The API's data, as pydantic models: what handlers validate query
parameters with and what the OpenAPI document is written from (one source,
so the document cannot drift from the code). Keys and meanings are the
same as the CLI's `--json` (maildesk/views.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
#: ISO 8601 with offset, passed on exactly as views.py writes it (the CLI's
#: --json and the API give the same text).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Person(BaseModel):
    email: str
    name: str


class Requester(Person):
    language: str
    confirmed: bool
    confirmed_at: Timestamp | None


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


class TicketDetail(Ticket):
    model_config = ConfigDict(extra="allow")  # messages, attachments, events


class TicketQuery(BaseModel):
    """GET /tickets parameters."""

    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    q: str | None = Field(default=None, max_length=200, description="text search")
    sla: Literal["green", "yellow", "red"] | None = None
    updated_since: datetime | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")


class NewRequester(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)


class TicketCreate(BaseModel):
    """POST /tickets: a ticket for a customer without an incoming mail."""

    model_config = ConfigDict(extra="forbid")
    requester: NewRequester
    subject: str = Field(min_length=1, max_length=998)
    text: str = Field(min_length=1, max_length=1_000_000)
    channel: Literal["phone", "web", "email"] = "phone"
    request_type: Literal["user_help", "incident", "product_request", "urgent"] = "user_help"
    category: str | None = Field(default=None, max_length=100)
    #: Send the customer the acknowledgement (ticket number, reply address).
    acknowledge: bool = True


class ReplyCreate(BaseModel):
    """POST /tickets/{number}/replies: a public answer to the customer."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1_000_000)
    #: The solution mail (with the survey link); the ticket becomes solved.
    solve: bool = False


class Reply(BaseModel):
    number: int
    message_id: str
    reply_to: str
    status: str


class NoteCreate(BaseModel):
    """POST /tickets/{number}/notes: internal, never sent to the customer."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1_000_000)


class TicketChange(BaseModel):
    """PATCH /tickets/{number}: the fields to change (absent: unchanged;
    assignee/group "none" clears them)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "pending", "on_hold", "solved", "closed"] | None = None
    priority: Literal["low", "normal", "high"] | None = None
    request_type: Literal["user_help", "incident", "product_request", "urgent"] | None = None
    assignee: str | None = Field(default=None, max_length=320)
    group: str | None = Field(default=None, max_length=200)
    planned_version: str | None = Field(default=None, max_length=100)
    dev_item: str | None = Field(default=None, max_length=100)


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


class ProblemDocument(BaseModel):
    """RFC 9457."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
