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
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

from maildesk import access
from maildesk.models import (
    Attachment,
    Customer,
    Message,
    Outbox,
    PortalLogin,
    PortalSessionRow,
    Ticket,
)
from maildesk.store import access as access_store

LOGIN_KIND = "portal_login"
#: Statuses that count as done: the "open" filter leaves them out.
DONE = ("solved", "closed")

_LOGIN = PortalLogin.__table__
_SESSION = PortalSessionRow.__table__
_CUSTOMER = Customer.__table__
_OUTBOX = Outbox.__table__
_TICKET = Ticket.__table__


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
    updated_at: datetime


def my_requests(session: Session, viewer: access.Viewer, *, open_only: bool, page: int,
                per_page: int) -> tuple[list[RequestRow], int]:
    """The tickets `viewer` may see (store/access.py), newest change first,
    one page of them, and how many there are in all."""
    where = [access_store.visible(viewer)]
    if open_only:
        where.append(_TICKET.c.status.not_in(DONE))
    connection = session.connection()
    total = int(connection.execute(
        select(func.count()).select_from(_TICKET).where(*where)).scalar_one())
    rows = connection.execute(
        select(_TICKET.c.number, _TICKET.c.subject, _TICKET.c.status, _TICKET.c.request_type,
               _TICKET.c.priority, _TICKET.c.updated_at)
        .where(*where).order_by(_TICKET.c.updated_at.desc(), _TICKET.c.number.desc())
        .limit(per_page).offset((page - 1) * per_page)).all()
    return [RequestRow(r.number, r.subject, r.status, r.request_type, r.priority,
                       r.updated_at) for r in rows], total


# -- a ticket -------------------------------------------------------------------------------

#: The messages a customer reads: their side's and the agents' public
#: replies. Internal notes (and with them held mail kept on a ticket, and
#: agents' mails whose commands were applied) are "internal": never shown.
PUBLIC = ("in", "out")

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
