"""The tables. Plain SQLModel classes; queries live in store/.

Times are stored as timezone-aware UTC. Status, request type and the like are
short strings (readable in SQL, portable between SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend: SQLite keeps no offset, so a
    naive value read back is UTC by construction."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(**kwargs: object) -> object:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    # May members see each other's tickets: organisation / own (access.py).
    ticket_access: str = Field(default="organisation", max_length=20,
                               sa_column_kwargs={"default": "organisation"})
    created_at: datetime = _ts()
    updated_at: datetime = _ts(sa_column_kwargs={"default": utcnow})


class OrganisationDomain(SQLModel, table=True):
    """A mail domain that makes a sender a member of the organisation."""

    __tablename__ = "organisation_domain"
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    domain: str = Field(max_length=255, unique=True)


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(default="", max_length=255)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    role: str = Field(default="user", max_length=20)  # main_contact / admin / user
    info_recipient: bool = False
    language: str = Field(default="de", max_length=8)
    confirmed: bool = False
    # When the customer confirmed the address by the mailed link (SPEC §8).
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    bouncing: bool = False
    # The last bounce of our mail to this address (when, and the reporting
    # MTA's reason); `bouncing` holds until it expires (notify.bounce_expiry_days),
    # the customer writes again, or an agent clears it.
    bounced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    bounce_reason: str = Field(default="", sa_type=Text, sa_column_kwargs={"default": ""})
    # 2nd-level support (seed 003): an internal customer is a partner who runs
    # support for end customers of its own; external is everyone else.
    kind: str = Field(default="external", max_length=10, sa_column_kwargs={"default": "external"})
    phone: str = Field(default="", max_length=50, sa_column_kwargs={"default": ""})
    # Set by the customer on the portal's profile page (or an agent).
    job_title: str = Field(default="", max_length=100,
                           sa_column_kwargs={"default": "", "server_default": ""})
    # own / organisation; None: the default of the role (access.py).
    ticket_access: str | None = Field(default=None, max_length=20)
    created_at: datetime = _ts()
    # Core inserts (store/tickets.py) name the columns they set; these fill in.
    updated_at: datetime = _ts(sa_column_kwargs={"default": utcnow})


class DirectoryEvent(SQLModel, table=True):
    """The history of customers and organisations: who changed what, as
    Event is for tickets."""

    __tablename__ = "directory_event"
    __table_args__ = (Index("ix_directory_event_subject", "subject", "subject_id"),)
    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=20)  # customer / organisation
    subject_id: int
    at: datetime = _ts()
    actor: str = Field(max_length=320)
    field: str = Field(max_length=40)
    old: str | None = Field(default=None, sa_type=Text)
    new: str | None = Field(default=None, sa_type=Text)


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(default="", max_length=255)
    language: str = Field(default="de", max_length=8)
    active: bool = True


class AgentGroup(SQLModel, table=True):
    __tablename__ = "agent_group"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    email: str | None = Field(default=None, max_length=320)


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_member"
    group_id: int = Field(foreign_key="agent_group.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True)


class Counter(SQLModel, table=True):
    """Named counters (ticket numbers) incremented with one UPDATE."""

    name: str = Field(primary_key=True, max_length=40)
    value: int


class Ticket(SQLModel, table=True):
    __table_args__ = (Index("ix_ticket_status_updated", "status", "updated_at"),
                      # a list by status, newest first, walks this index (no sort)
                      Index("ix_ticket_status_number", "status", "number"),
                      Index("ix_ticket_status_pending", "status", "reminders_sent",
                            "pending_since"),
                      Index("ix_ticket_status_solved", "status", "solved_at"))
    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    subject: str = Field(sa_type=Text)
    status: str = Field(default="new", max_length=20)
    request_type: str = Field(default="user_help", max_length=30)
    priority: str = Field(default="low", max_length=10)
    priority_explicit: bool = False
    channel: str = Field(default="email", max_length=10)
    requester_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id")
    group_id: int | None = Field(default=None, foreign_key="agent_group.id")
    category: str | None = Field(default=None, max_length=255)
    subcategory: str | None = Field(default=None, max_length=255)
    product: str | None = Field(default=None, max_length=255)
    version: str | None = Field(default=None, max_length=64)
    language: str = Field(default="de", max_length=8)
    follow_up_of: int | None = None
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    solved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The reminder clock (SPEC §3): set when the ticket becomes pending and
    # again when reminder 1 goes out, cleared when it leaves pending (a
    # customer reply does that).
    pending_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminders_sent: int = 0
    # The first public answer of an agent (SLA first response).
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Waiting for development (seed 000/002): the item and the version that
    # will ship the fix; `maildesk release publish` notifies the requesters.
    dev_item: str | None = Field(default=None, max_length=255)
    planned_version: str | None = Field(default=None, max_length=64, index=True)
    # The SLA light's escalations already sent: "", "yellow" or "red"
    # (each notice goes once; reset when the ticket is solved).
    sla_alerted: str = Field(default="", max_length=10, sa_column_kwargs={"default": ""})
    # 2nd-level support (seed 003): the partner is the requester; the end
    # customer it serves, and the level now working on the ticket (1 the
    # partner's own, 2 handed to the central support).
    end_customer_id: int | None = Field(default=None, foreign_key="customer.id")
    support_level: int = Field(default=1, sa_column_kwargs={"default": 1})


class Participant(SQLModel, table=True):
    """CC / followers of a ticket, by address (they need not be customers)."""

    __table_args__ = (UniqueConstraint("ticket_id", "email"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=255)
    role: str = Field(default="cc", max_length=20)  # cc / follower


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_mail.id")
    direction: str = Field(max_length=10)  # in / out / internal
    from_addr: str = Field(default="", max_length=320)
    from_name: str = Field(default="", max_length=255)
    to_addrs: str = Field(default="", sa_type=Text)  # comma separated
    cc_addrs: str = Field(default="", sa_type=Text)
    subject: str = Field(default="", sa_type=Text)
    date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_id: str = Field(default="", max_length=998, index=True)
    in_reply_to: str = Field(default="", sa_type=Text)
    references: str = Field(default="", sa_type=Text)
    text: str = Field(default="", sa_type=Text)
    text_display: str = Field(default="", sa_type=Text)  # quoted history removed
    html: str = Field(default="", sa_type=Text)
    reply_to: str = Field(default="", max_length=320)  # our tokenised address, outgoing
    author: str = Field(default="", max_length=320)  # agent or customer who wrote it
    # how the sender was proven (or not): "agent token", "dmarc=pass (mx…)",
    # "unverified: …"; "" when nothing was checked
    authenticity: str = Field(default="", max_length=255,
                              sa_column_kwargs={"server_default": ""})
    created_at: datetime = _ts()


class Attachment(SQLModel, table=True):
    """Metadata; the bytes live once per sha256 under the data dir."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int
    sha256: str = Field(max_length=64, index=True)
    content_id: str = Field(default="", max_length=998)
    inline: bool = False


class Event(SQLModel, table=True):
    """The history: who changed what, when, from what to what."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = _ts()
    actor: str = Field(max_length=320)
    field: str = Field(max_length=40)
    old: str | None = Field(default=None, sa_type=Text)
    new: str | None = Field(default=None, sa_type=Text)


class InboundMail(SQLModel, table=True):
    """One accepted mail: where it came from and what became of it.

    `dedup_key` is "mid:<Message-ID>" or "sha256:<hash>" for mails without
    one; its unique index makes redelivery detection race-free.
    """

    __tablename__ = "inbound_mail"
    __table_args__ = (Index("ix_inbound_mail_sender_received", "sender", "received_at"),)
    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _ts()
    source: str = Field(max_length=20)  # pipe / import / smtp / lmtp / imap
    envelope_from: str | None = Field(default=None, max_length=998)
    envelope_to: str = Field(default="", sa_type=Text)
    sender: str | None = Field(default=None, max_length=320)  # the requester, once known
    message_id: str = Field(default="", max_length=998)
    sha256: str = Field(max_length=64)
    dedup_key: str = Field(max_length=1010, unique=True)
    size: int
    state: str = Field(default="pending", max_length=20, index=True)  # pending/done/failed
    outcome: str | None = Field(default=None, max_length=20)
    reason: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    ticket_number: int | None = None
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # temporary faults so far, and when the drainer may try again
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HeldMail(SQLModel, table=True):
    """A mail maildesk did not turn into a ticket, kept for a person to
    recover or delete (Zendesk's suspended tickets). The id is the inbound
    row's, so `inbound raw ID` shows the same mail."""

    __tablename__ = "held_mail"
    inbound_id: int = Field(foreign_key="inbound_mail.id", primary_key=True)
    reason: str = Field(max_length=40, index=True)
    detail: str = Field(default="", sa_type=Text)
    sender: str = Field(default="", max_length=320)
    subject: str = Field(default="", sa_type=Text)
    ticket_number: int | None = None  # the ticket it was noted on, if any
    held_at: datetime = _ts(index=True)
    state: str = Field(default="held", max_length=20, index=True)  # held/recovered/deleted/purged
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str = Field(default="", max_length=320)
    result: str = Field(default="", sa_type=Text)  # what recovering made of it


class InboundRaw(SQLModel, table=True):
    """The raw bytes, apart from the row so that listings never load them."""

    __tablename__ = "inbound_raw"
    inbound_id: int = Field(foreign_key="inbound_mail.id", primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ImapState(SQLModel, table=True):
    """Where the poller stands in one IMAP account's folder.

    A message is fetched again only when UIDVALIDITY changes; the lease
    keeps two `serve` instances from polling the same account at once.
    """

    __tablename__ = "imap_state"
    account: str = Field(primary_key=True, max_length=255)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)  # 32-bit unsigned
    last_uid: int = Field(default=0, sa_type=BigInteger)
    lease_owner: str | None = Field(default=None, max_length=255)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = _ts()


class OAuth2Token(SQLModel, table=True):
    """An IMAP account's cached OAuth2 access token, and the refresh token
    the endpoint rotated to (accept/oauth2.py): one row per account, so
    restarts and other instances reuse a token instead of each asking the
    token endpoint. Both are sealed with a key derived from the account's
    own credentials (`key_id` names it); the row alone opens no mailbox."""

    __tablename__ = "oauth2_token"
    account: str = Field(primary_key=True, max_length=255)
    key_id: str = Field(max_length=32)
    access_token: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refresh_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refresh_token: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = _ts()


class Outbox(SQLModel, table=True):
    """A mail maildesk must send, written in the transaction of its cause.

    state: queued -> sending -> sent, or back to queued (temporary failure,
    `next_attempt_at`), or failed (attempts exhausted, permanent refusal).
    `message_id` is fixed when the row is made, so a retry sends the very
    same mail and threading never depends on which attempt got through.
    """

    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),
                      Index("ix_outbox_to_created", "to_addrs", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _ts()
    kind: str = Field(max_length=40)
    # None only for mails about no ticket (an announcement to information
    # recipients; then `announcement_id` says which).
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    announcement_id: int | None = Field(default=None, foreign_key="announcement.id")
    message_row_id: int | None = Field(default=None, foreign_key="message.id")
    to_addrs: str = Field(sa_type=Text)
    cc_addrs: str = Field(default="", sa_type=Text)
    language: str = Field(default="de", max_length=8)
    auto_submitted: str | None = Field(default=None, max_length=40)
    message_id: str = Field(max_length=998)
    payload: str = Field(default="{}", sa_type=Text)  # JSON: extra template context
    state: str = Field(default="queued", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    last_error: str | None = Field(default=None, sa_type=Text)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CsatRating(SQLModel, table=True):
    """A customer's satisfaction rating of one ticket (seed 001, SPEC §7).

    One per ticket (the unique key), changeable for `web.csat_change_days`
    after `created_at`. Assignee, group and request type are copied at
    rating time, so the report credits whoever handled the ticket then,
    even if it is reassigned later.
    """

    __tablename__ = "csat_rating"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", unique=True)
    score: int  # 1 = sehr unzufrieden ... 5 = sehr zufrieden
    reason: str = Field(default="", sa_type=Text)
    customer_email: str = Field(default="", max_length=320)
    agent_email: str | None = Field(default=None, max_length=320)
    group_name: str | None = Field(default=None, max_length=255)
    request_type: str = Field(default="user_help", max_length=30)
    language: str = Field(default="de", max_length=8)
    changes: int = 0  # how often the customer changed the rating
    created_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """An agent's key to the HTTP API. Only the SHA-256 of the token is
    kept (the token has 256 bits of randomness, so no slow hash is needed);
    `prefix` is its first characters, to tell tokens apart in a listing."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    agent_email: str = Field(max_length=320, index=True)
    name: str = Field(default="", max_length=200)
    scope: str = Field(default="agent", max_length=20)  # agent / admin
    created_at: datetime = _ts()
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ThirdPartyRequest(SQLModel, table=True):
    """An agent asked a third person for a statement, or forwarded the
    ticket to them for information (seed 003). Their answer comes back to a
    reply address naming this row and becomes an internal note."""

    __tablename__ = "third_party_request"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: str = Field(max_length=10)  # ask / forward
    email: str = Field(max_length=320)
    text: str = Field(default="", sa_type=Text)
    actor: str = Field(max_length=320)
    created_at: datetime = _ts()
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Announcement(SQLModel, table=True):
    """A product announcement to the information recipients (`maildesk
    announce`); one outbox row per recipient points here."""

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    actor: str = Field(max_length=320)
    created_at: datetime = _ts()
    recipients: int = 0


class Unsubscribe(SQLModel, table=True):
    """An address that asked for no more announcements (RFC 8058 one-click
    or an agent); never mailed an announcement again."""

    email: str = Field(primary_key=True, max_length=320)
    at: datetime = _ts()
    via: str = Field(default="link", max_length=20)  # link / agent


class PortalLogin(SQLModel, table=True):
    """A login link mailed to a customer (web/portal/auth.py): only the
    sha256 of its token is kept; used once (`used_at`), valid minutes."""

    __tablename__ = "portal_login"
    __table_args__ = (Index("ix_portal_login_customer_created", "customer_id", "created_at"),
                      Index("ix_portal_login_client_created", "client_address", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    customer_id: int = Field(foreign_key="customer.id")
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Who asked for it (the peer address): the per-client request limit.
    client_address: str = Field(default="", max_length=64)


class PortalSessionRow(SQLModel, table=True):
    """A customer's logged-in portal session (table portal_session): the
    cookie holds a random token, the row only its sha256. Ends at
    `expires_at` or when revoked (log out)."""

    __tablename__ = "portal_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
