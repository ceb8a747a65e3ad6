"""The portal's rows: login links, sessions, the "My requests" list and a
ticket's public side (its public messages and their files).

Every function takes the caller's session and never commits (the
transactions open in web/portal/auth.py). Tokens arrive here already
hashed (web/portal/login_rules.py); no raw token is ever written.
Which tickets a customer sees is store/access.py's rule, nothing else.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from maildesk import access
from maildesk.models import (
    Attachment,
    Customer,
    Message,
    Outbox,
    Participant,
    PortalLogin,
    PortalSessionRow,
    Ticket,
    Unsubscribe,
)
from maildesk.store import access as access_store
from maildesk.store import search

LOGIN_KIND = "portal_login"
#: The messages a customer reads: their side's and the agents' public
#: replies. Internal notes (and with them held mail kept on a ticket, and
#: agents' mails whose commands were applied) are "internal": never shown.
PUBLIC = ("in", "out")
#: Statuses that count as done: the "open" filter leaves them out.
DONE = ("solved", "closed")

_LOGIN = PortalLogin.__table__
_SESSION = PortalSessionRow.__table__
_CUSTOMER = Customer.__table__
_OUTBOX = Outbox.__table__
_TICKET = Ticket.__table__
#: How long a spent login link or an ended session stays after it stopped
#: working: a day for "who logged in from where" questions (and past the
#: login limits' hour, which counts the links of the last hour).
KEEP_ENDED = timedelta(days=1)


@dataclass(frozen=True)
class PortalCustomer:
    id: int
    email: str
    name: str
    language: str
    confirmed: bool


def _customer(row: Any) -> PortalCustomer:
    return PortalCustomer(row.id, row.email, row.name or "", row.language or "de",
                          bool(row.confirmed))


def _customer_query() -> Any:
    return select(_CUSTOMER.c.id, _CUSTOMER.c.email, _CUSTOMER.c.name, _CUSTOMER.c.language,
                  _CUSTOMER.c.confirmed)


def customer_by_email(session: Session, email: str) -> PortalCustomer | None:
    row = session.connection().execute(
        _customer_query().where(_CUSTOMER.c.email == email.lower())).first()
    return _customer(row) if row else None


def customer_by_id(session: Session, customer_id: int) -> PortalCustomer | None:
    row = session.connection().execute(
        _customer_query().where(_CUSTOMER.c.id == customer_id)).first()
    return _customer(row) if row else None


# -- login links ---------------------------------------------------------------------------


def login_times_of_customer(session: Session, customer_id: int, since: datetime) -> list[datetime]:
    return list(session.connection().execute(
        select(_LOGIN.c.created_at).where(_LOGIN.c.customer_id == customer_id,
                                          _LOGIN.c.created_at >= since)).scalars())


def login_times_of_client(session: Session, client: str, since: datetime) -> list[datetime]:
    return list(session.connection().execute(
        select(_LOGIN.c.created_at).where(_LOGIN.c.client_address == client,
                                          _LOGIN.c.created_at >= since)).scalars())


def add_login(session: Session, customer: PortalCustomer, token_hash: str, nonce: str,
              client: str, now: datetime, expires_at: datetime, minutes: int,
              message_id_domain: str) -> int:
    """The login row and its mail's outbox row (ticketless, kind
    portal_login); returns the outbox id. The payload keeps the nonce the
    link is derived from (deliver/portal_login.py), not the link."""
    connection = session.connection()
    connection.execute(insert(_LOGIN), {
        "token_hash": token_hash, "customer_id": customer.id, "created_at": now,
        "expires_at": expires_at, "used_at": None, "client_address": client[:64]})
    return int(connection.execute(insert(_OUTBOX).returning(_OUTBOX.c.id), {
        "created_at": now, "kind": LOGIN_KIND, "ticket_id": None, "announcement_id": None,
        "message_row_id": None, "to_addrs": customer.email, "cc_addrs": "",
        "language": customer.language, "auto_submitted": None,
        "message_id": f"portal-login.{secrets.token_hex(8)}@{message_id_domain}",
        "payload": json.dumps({"nonce": nonce, "minutes": minutes}),
        "state": "queued", "attempts": 0, "next_attempt_at": now,
    }).scalar_one())


def login_of(session: Session, token_hash: str) -> Any:
    """The login row (customer_id, expires_at, used_at), or None."""
    return session.connection().execute(
        select(_LOGIN.c.id, _LOGIN.c.customer_id, _LOGIN.c.expires_at, _LOGIN.c.used_at)
        .where(_LOGIN.c.token_hash == token_hash)).first()


def use_login(session: Session, login_id: int, now: datetime) -> bool:
    """Mark the link used: True for exactly one caller, and only while it
    is unused and unexpired (a conditional update: two clicks at once
    cannot both log in)."""
    result = session.connection().execute(
        update(_LOGIN).where(_LOGIN.c.id == login_id, _LOGIN.c.used_at.is_(None),
                             _LOGIN.c.expires_at > now).values(used_at=now))
    return result.rowcount == 1


def confirm_customer(session: Session, customer_id: int, now: datetime) -> bool:
    """The login link proves the address: confirm it. True when it was not yet."""
    result = session.connection().execute(
        update(_CUSTOMER).where(_CUSTOMER.c.id == customer_id, _CUSTOMER.c.confirmed.is_(False))
        .values(confirmed=True, confirmed_at=now))
    return result.rowcount == 1


# -- sessions -------------------------------------------------------------------------------


def add_session(session: Session, customer_id: int, token_hash: str, now: datetime,
                expires_at: datetime) -> None:
    session.connection().execute(insert(_SESSION), {
        "token_hash": token_hash, "customer_id": customer_id, "created_at": now,
        "last_seen_at": now, "expires_at": expires_at, "revoked_at": None})


def session_customer(session: Session, token_hash: str, now: datetime,
                     touch_after: datetime) -> int | None:
    """The customer of a live session (not revoked, not expired), or None.
    `last_seen_at` is moved on when it is older than `touch_after`."""
    row = session.connection().execute(
        select(_SESSION.c.id, _SESSION.c.customer_id, _SESSION.c.last_seen_at)
        .where(_SESSION.c.token_hash == token_hash, _SESSION.c.revoked_at.is_(None),
               _SESSION.c.expires_at > now)).first()
    if row is None:
        return None
    if row.last_seen_at < touch_after:
        session.connection().execute(
            update(_SESSION).where(_SESSION.c.id == row.id).values(last_seen_at=now))
    return int(row.customer_id)


def revoke_session(session: Session, token_hash: str, now: datetime) -> int | None:
    """End this session; returns its customer (None: there was no live one)."""
    customer_id = session.connection().execute(
        select(_SESSION.c.customer_id).where(_SESSION.c.token_hash == token_hash,
                                             _SESSION.c.revoked_at.is_(None))).scalar()
    if customer_id is None:
        return None
    session.connection().execute(
        update(_SESSION).where(_SESSION.c.token_hash == token_hash,
                               _SESSION.c.revoked_at.is_(None)).values(revoked_at=now))
    return int(customer_id)


def revoke_all(session: Session, customer_id: int, now: datetime) -> int:
    """End every session of the customer; how many were live."""
    return int(session.connection().execute(
        update(_SESSION).where(_SESSION.c.customer_id == customer_id,
                               _SESSION.c.revoked_at.is_(None)).values(revoked_at=now)).rowcount)


# -- "My requests" --------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    number: int
    subject: str
    status: str
    request_type: str
    priority: str
    created_at: datetime
    updated_at: datetime
    requester: str  # the requester's name, else address (the organisation's tab shows it)


@dataclass(frozen=True)
class RequestFilter:
    """Which of the tickets a customer may see a list shows; plain values
    (web/portal/list_query.py reads them from the page's address)."""

    own_only: bool = True  # False: the organisation's too, where the rule allows it
    open_only: bool = True
    opened_since: datetime | None = None
    request_type: str = ""
    text: str = ""
    sort: str = "updated"
    descending: bool = True


#: The order of a status or priority column: as a customer reads the words.
_STATUS_ORDER = {"new": 0, "open": 1, "pending": 2, "on_hold": 3, "solved": 4, "closed": 5}
_PRIORITY_ORDER = {"low": 0, "normal": 1, "high": 2}


def _order(sort: str, descending: bool) -> list[Any]:
    t = _TICKET.c
    column: Any = {
        "created": t.created_at, "number": t.number, "subject": func.lower(t.subject),
        "status": case(_STATUS_ORDER, value=t.status, else_=9),
        "priority": case(_PRIORITY_ORDER, value=t.priority, else_=1),
    }.get(sort, t.updated_at)
    tie = t.number.desc() if descending else t.number.asc()
    return [column.desc() if descending else column.asc(), tie]


def my_requests(session: Session, viewer: access.Viewer, wanted: RequestFilter, *,
                page: int, per_page: int) -> tuple[list[RequestRow], int]:
    """The tickets `viewer` may see (store/access.py) that `wanted`
    describes, one page of them in its order, and how many there are. The
    text is looked for in the subject and the public messages only (never
    in an internal note: the search must not tell what one says)."""
    where = [access_store.visible_own(viewer) if wanted.own_only
             else access_store.visible(viewer)]
    t = _TICKET.c
    if wanted.open_only:
        where.append(t.status.not_in(DONE))
    if wanted.opened_since is not None:
        where.append(t.created_at >= wanted.opened_since)
    if wanted.request_type:
        where.append(t.request_type == wanted.request_type)
    if wanted.text:
        where.append(search.matching_tickets(session, wanted.text, PUBLIC, narrowed=True))
    connection = session.connection()
    c = _CUSTOMER.c
    # The count rides on the page's own rows (a window over every row the
    # conditions leave, before LIMIT): one pass of the access rule and the
    # text search instead of two (bench/portal.py, q=drucker on the
    # organisation's 2,000 tickets: half the time).
    rows = connection.execute(
        select(t.number, t.subject, t.status, t.request_type, t.priority, t.created_at,
               t.updated_at, c.name, c.email, func.count().over().label("total"))
        .select_from(_TICKET).outerjoin(_CUSTOMER, c.id == t.requester_id)
        .where(*where).order_by(*_order(wanted.sort, wanted.descending))
        .limit(per_page).offset((page - 1) * per_page)).all()
    if rows:
        total = int(rows[0].total)
    elif page > 1:  # past the last page: the rows cannot say how many there are
        total = int(connection.execute(
            select(func.count()).select_from(_TICKET).where(*where)).scalar_one())
    else:
        total = 0
    return [RequestRow(r.number, r.subject, r.status, r.request_type, r.priority,
                       r.created_at, r.updated_at, r.name or r.email or "")
            for r in rows], total


# -- a ticket -------------------------------------------------------------------------------

_MESSAGE = Message.__table__
_ATTACHMENT = Attachment.__table__


@dataclass(frozen=True)
class PortalTicket:
    id: int
    number: int
    subject: str
    status: str
    priority: str
    request_type: str
    category: str | None
    subcategory: str | None
    planned_version: str | None
    dev_item: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PortalFile:
    id: int
    filename: str
    size: int


@dataclass(frozen=True)
class PortalMessage:
    id: int
    direction: str  # in / out
    from_addr: str
    from_name: str
    at: datetime
    text: str
    files: tuple[PortalFile, ...]


@dataclass(frozen=True)
class PortalDownload:
    """A file a customer may download: where its bytes are."""

    id: int
    filename: str
    content_type: str
    sha256: str
    ticket_number: int


def visible_ticket(session: Session, viewer: access.Viewer, number: int) -> PortalTicket | None:
    """The ticket, when `viewer` may see it (store/access.py); None for a
    ticket they may not see exactly as for one that does not exist."""
    t = _TICKET.c
    row = session.connection().execute(
        select(t.id, t.number, t.subject, t.status, t.priority, t.request_type, t.category,
               t.subcategory, t.planned_version, t.dev_item, t.created_at, t.updated_at)
        .where(t.number == number, access_store.visible(viewer))).first()
    return PortalTicket(*row) if row is not None else None


def public_messages(session: Session, ticket_id: int) -> list[PortalMessage]:
    """The public communication in the order it was written, each message
    with its files; never an internal note."""
    m, a = _MESSAGE.c, _ATTACHMENT.c
    connection = session.connection()
    rows = connection.execute(
        select(m.id, m.direction, m.from_addr, m.from_name, m.date, m.created_at,
               m.text_display, m.text)
        .where(m.ticket_id == ticket_id, m.direction.in_(PUBLIC)).order_by(m.id)).all()
    files: dict[int, list[PortalFile]] = {}
    if rows:
        for f in connection.execute(
                select(a.id, a.message_id, a.filename, a.size)
                .join_from(_ATTACHMENT, _MESSAGE, a.message_id == m.id)
                .where(m.ticket_id == ticket_id, m.direction.in_(PUBLIC)).order_by(a.id)):
            files.setdefault(f.message_id, []).append(PortalFile(f.id, f.filename, f.size))
    return [PortalMessage(r.id, r.direction, r.from_addr or "", r.from_name or "",
                          r.created_at, r.text_display or r.text or "",
                          tuple(files.get(r.id, ()))) for r in rows]


def public_attachment(session: Session, viewer: access.Viewer,
                      attachment_id: int) -> PortalDownload | None:
    """The attachment when its message is public and its ticket is one
    `viewer` may see; None otherwise (and for no such attachment)."""
    a, m, t = _ATTACHMENT.c, _MESSAGE.c, _TICKET.c
    row = session.connection().execute(
        select(a.id, a.filename, a.content_type, a.sha256, t.number)
        .join_from(_ATTACHMENT, _MESSAGE, a.message_id == m.id)
        .join(_TICKET, m.ticket_id == t.id)
        .where(a.id == attachment_id, m.direction.in_(PUBLIC),
               access_store.visible(viewer))).first()
    return PortalDownload(*row) if row is not None else None


# -- the profile ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalProfile:
    """What the profile page shows of the customer: the fields they
    change, whether the address is on the unsubscribe list (then no
    announcement reaches it, whatever info_recipient says: actions/
    announce.py) and how many sessions are live."""

    name: str
    phone: str
    job_title: str
    language: str
    info_recipient: bool
    unsubscribed: bool
    live_sessions: int


def profile_of(session: Session, customer_id: int, now: datetime) -> PortalProfile | None:

    c, s, u = _CUSTOMER.c, _SESSION.c, Unsubscribe.__table__.c
    connection = session.connection()
    row = connection.execute(
        select(c.email, c.name, c.phone, c.job_title, c.language, c.info_recipient)
        .where(c.id == customer_id)).first()
    if row is None:
        return None
    unsubscribed = connection.execute(
        select(u.email).where(u.email == row.email.lower())).first() is not None
    live = int(connection.execute(
        select(func.count()).select_from(_SESSION)
        .where(s.customer_id == customer_id, s.revoked_at.is_(None),
               s.expires_at > now)).scalar_one())
    return PortalProfile(row.name or "", row.phone or "", row.job_title or "",
                         row.language or "de", bool(row.info_recipient), unsubscribed, live)


# -- the customer's standing on a ticket -----------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """What the ticket page offers this customer: "mark as solved" once
    support has answered, follow / stop following for colleagues."""

    requester: bool
    role: str | None  # cc / follower: the customer's participant row
    answered: bool  # support has written a public reply
    #: The addresses already on the ticket (requester, CCs, followers): no
    #: colleague among them is offered for CC again.
    people: frozenset[str] = frozenset()


def standing(session: Session, ticket_id: int, viewer: access.Viewer) -> Standing:
    t, p, m = _TICKET.c, Participant.__table__.c, _MESSAGE.c
    connection = session.connection()
    c = _CUSTOMER.c
    requester = connection.execute(
        select(t.requester_id, c.email).select_from(_TICKET.outerjoin(
            _CUSTOMER, c.id == t.requester_id)).where(t.id == ticket_id)).first()
    roles = {r.email: r.role for r in connection.execute(select(p.email, p.role).where(
        p.ticket_id == ticket_id))}
    answered = connection.execute(select(m.id).where(
        m.ticket_id == ticket_id, m.direction == "out").limit(1)).first() is not None
    people = set(roles)
    if requester is not None and requester.email:
        people.add(requester.email.lower())
    return Standing(requester is not None and requester.requester_id == viewer.customer_id,
                    roles.get(viewer.email), answered, frozenset(people))


def prune(connection: Connection, now: datetime) -> tuple[int, int]:
    """Delete login links created more than KEEP_ENDED ago and sessions
    that expired or were revoked more than KEEP_ENDED ago (the sweep, so
    the tables hold live rows and a day of history, not every login
    ever). Returns (links, sessions) deleted."""
    cutoff = now - KEEP_ENDED
    links = connection.execute(delete(_LOGIN).where(_LOGIN.c.created_at < cutoff)).rowcount
    sessions = connection.execute(delete(_SESSION).where(
        (_SESSION.c.expires_at < cutoff) | (_SESSION.c.revoked_at < cutoff))).rowcount
    return links or 0, sessions or 0
