"""The portal's rows: login links, sessions, and the "My requests" list.

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
from maildesk.models import Customer, Outbox, PortalLogin, PortalSessionRow, Ticket
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
