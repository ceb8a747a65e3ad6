"""The API's models for customers and organisations (keys as the CLI's
`maildesk customers|organisations ... --json`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from maildesk.actions.directory import DOMAIN_PATTERN, PHONE_PATTERN
from maildesk.web.api.schemas import Status, Ticket, Timestamp, UpdatedSince, matching

Role = Literal["main_contact", "admin", "user"]
Access = Literal["own", "organisation"]
Kind = Literal["external", "internal"]
Cursor = Field(default=None, pattern=r"^[0-9]{1,18}$")


class OrganisationRef(BaseModel):
    id: int
    name: str


class CustomerInfo(BaseModel):
    id: int
    email: str
    name: str
    phone: str
    language: str
    role: Role
    #: Gets product announcements by mail (seed 000).
    info_recipient: bool
    confirmed: bool
    confirmed_at: Timestamp | None
    bouncing: bool
    #: When the last bounce came and what it said (DSN status, diagnostic);
    #: null/"" when not bouncing. Expires after notify.bounce_expiry_days.
    bounced_at: Timestamp | None = None
    bounce_reason: str = ""
    #: internal: a partner serving end customers of its own (2nd-level
    #: support: its tickets may name an end customer and go to level 2).
    kind: Kind
    organisation: OrganisationRef | None
    #: The customer's own setting; null: the default of the role.
    ticket_access: Access | None
    #: What the customer sees after both settings (the stricter wins).
    sees: Literal["none", "own", "organisation"]
    created_at: Timestamp | None
    updated_at: Timestamp | None


class DirectoryEventInfo(BaseModel):
    at: Timestamp
    actor: str
    field: str
    old: str | None
    new: str | None


class CustomerDetail(CustomerInfo):
    #: Newest first.
    events: list[DirectoryEventInfo]


class CustomerPage(BaseModel):
    items: list[CustomerInfo]
    next_cursor: str | None


class CustomerQuery(UpdatedSince):
    """GET /customers parameters."""

    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(default=None, max_length=200, description="in address or name")
    organisation: int | None = Field(default=None, ge=0, le=999_999_999_999_999_999,
                                     description="an organisation's id")
    role: Role | None = None
    confirmed: bool | None = None
    bouncing: bool | None = None
    kind: Kind | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Cursor


class CustomerChange(BaseModel):
    """PATCH /customers/{id}: the fields to change (absent: unchanged).
    role, ticket_access and organisation_id need an admin token."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    name: str | None = Field(default=None, max_length=255)
    phone: matching(PHONE_PATTERN) | None = None
    language: Literal["de", "en"] | None = None
    confirmed: bool | None = None
    #: Only false: clears the flag set when mail to the address bounced.
    bouncing: Literal[False] | None = None
    info_recipient: bool | None = None
    #: internal: a partner (2nd-level support).
    kind: Kind | None = None
    role: Role | None = None
    #: null: back to the default of the role.
    ticket_access: Access | None = None
    #: null: no organisation.
    organisation_id: int | None = Field(default=None, ge=0, le=999_999_999_999_999_999)


class CustomerChanged(BaseModel):
    changes: list[str]
    customer: CustomerInfo


class VisibleTicketsQuery(BaseModel):
    """GET /customers/{id}/tickets parameters."""

    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    q: str | None = Field(default=None, max_length=200, description="text search")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")


class VisibleTickets(BaseModel):
    """The tickets the customer may see, through the one rule (access.py)."""

    sees: Literal["none", "own", "organisation"]
    items: list[Ticket]
    next_cursor: str | None


class OrganisationInfo(BaseModel):
    id: int
    name: str
    #: organisation: members may see each other's tickets (as far as their
    #: own setting allows); own: each sees only their own.
    ticket_access: Access
    domains: list[str]
    members: int
    created_at: Timestamp | None
    updated_at: Timestamp | None


class OrganisationDetail(OrganisationInfo):
    events: list[DirectoryEventInfo]


class OrganisationPage(BaseModel):
    items: list[OrganisationInfo]
    next_cursor: str | None


class OrganisationQuery(UpdatedSince):
    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(default=None, max_length=200, description="in name or domain")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Cursor


Domain = Annotated[matching(DOMAIN_PATTERN), Field(max_length=255)]


class OrganisationChange(BaseModel):
    """PATCH /organisations/{id} (admin)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    name: str | None = Field(default=None, min_length=1, max_length=255)
    ticket_access: Access | None = None
    add_domains: list[Domain] = Field(default_factory=list, max_length=50)
    remove_domains: list[Domain] = Field(default_factory=list, max_length=50)


class OrganisationChanged(BaseModel):
    changes: list[str]
    organisation: OrganisationInfo
