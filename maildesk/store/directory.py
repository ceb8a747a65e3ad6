"""Customers and organisations: the rows as plain data (the same keys for
the CLI's --json and the API), lists newest first with an id cursor, and
their history (directory_event)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlmodel import Session

from maildesk import access
from maildesk.models import Customer, DirectoryEvent, Organisation, OrganisationDomain, utcnow


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class CustomerFilter:
    """What a customer list may be narrowed to (None: any)."""

    search: str | None = None  # in address or name
    organisation_id: int | None = None
    role: str | None = None
    confirmed: bool | None = None
    bouncing: bool | None = None
    kind: str | None = None  # internal (a partner, 2nd-level support) / external


def _customer_dict(row: Any) -> dict[str, Any]:
    viewer = access.Viewer(
        customer_id=row.id, email=row.email, confirmed=row.confirmed, role=row.role,
        organisation_id=row.organisation_id, own_setting=row.ticket_access,
        organisation_setting=row.organisation_access if row.organisation_id else None)
    organisation = ({"id": row.organisation_id, "name": row.organisation_name}
                    if row.organisation_id else None)
    return {
        "id": row.id, "email": row.email, "name": row.name, "phone": row.phone,
        "language": row.language, "role": row.role, "info_recipient": row.info_recipient,
        "confirmed": row.confirmed, "confirmed_at": _iso(row.confirmed_at),
        "bouncing": row.bouncing, "bounced_at": _iso(row.bounced_at),
        "bounce_reason": row.bounce_reason or "", "kind": row.kind, "organisation": organisation,
        "ticket_access": row.ticket_access, "sees": access.scope(viewer),
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }


def _customers_select() -> Any:
    customer, organisation = Customer.__table__, Organisation.__table__
    return (select(customer, organisation.c.name.label("organisation_name"),
                   organisation.c.ticket_access.label("organisation_access"))
            .outerjoin(organisation, organisation.c.id == customer.c.organisation_id))


def list_customers(session: Session, wanted: CustomerFilter, limit: int, *,
                   before: int | None = None,
                   updated_since: datetime | None = None) -> list[dict[str, Any]]:
    """Newest first; `before` an id (the API's cursor)."""
    customer = Customer.__table__
    statement = _customers_select().order_by(customer.c.id.desc()).limit(limit)
    if wanted.search:
        pattern = f"%{wanted.search.lower()}%"
        statement = statement.where(or_(customer.c.email.like(pattern),
                                        func.lower(customer.c.name).like(pattern)))
    for column, value in (("organisation_id", wanted.organisation_id),
                          ("role", wanted.role), ("confirmed", wanted.confirmed),
                          ("bouncing", wanted.bouncing), ("kind", wanted.kind)):
        if value is not None:
            statement = statement.where(customer.c[column] == value)
    if before is not None:
        statement = statement.where(customer.c.id < before)
    if updated_since is not None:
        statement = statement.where(customer.c.updated_at >= updated_since)
    return [_customer_dict(row) for row in session.connection().execute(statement)]


def customer(session: Session, customer_id: int) -> dict[str, Any] | None:
    row = session.connection().execute(
        _customers_select().where(Customer.__table__.c.id == customer_id)).first()
    return None if row is None else _customer_dict(row)


def customer_id_by_email(session: Session, email: str) -> int | None:
    table = Customer.__table__
    return session.connection().execute(
        select(table.c.id).where(table.c.email == email.strip().lower())).scalar()


def update_customer(session: Session, customer_id: int, values: dict[str, Any]) -> None:
    table = Customer.__table__
    session.connection().execute(update(table).where(table.c.id == customer_id)
                                 .values(**values, updated_at=utcnow()))


def _domains(session: Session, ids: Iterable[int]) -> dict[int, list[str]]:
    table = OrganisationDomain.__table__
    found: dict[int, list[str]] = {}
    rows = session.connection().execute(
        select(table.c.organisation_id, table.c.domain)
        .where(table.c.organisation_id.in_(list(ids))).order_by(table.c.domain))
    for row in rows:
        found.setdefault(row.organisation_id, []).append(row.domain)
    return found


def _member_counts(session: Session, ids: Iterable[int]) -> dict[int, int]:
    table = Customer.__table__
    rows = session.connection().execute(
        select(table.c.organisation_id, func.count())
        .where(table.c.organisation_id.in_(list(ids))).group_by(table.c.organisation_id))
    return {row[0]: int(row[1]) for row in rows}


def _organisation_dicts(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [row.id for row in rows]
    domains, members = _domains(session, ids), _member_counts(session, ids)
    return [{"id": row.id, "name": row.name, "ticket_access": row.ticket_access,
             "domains": domains.get(row.id, []), "members": members.get(row.id, 0),
             "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}
            for row in rows]


def list_organisations(session: Session, search: str | None, limit: int, *,
                       before: int | None = None,
                       updated_since: datetime | None = None) -> list[dict[str, Any]]:
    """Newest first; `search` in the name or a domain."""
    table, domain = Organisation.__table__, OrganisationDomain.__table__
    statement = select(table).order_by(table.c.id.desc()).limit(limit)
    if search:
        pattern = f"%{search.lower()}%"
        statement = statement.where(or_(
            func.lower(table.c.name).like(pattern),
            table.c.id.in_(select(domain.c.organisation_id)
                           .where(domain.c.domain.like(pattern)))))
    if before is not None:
        statement = statement.where(table.c.id < before)
    if updated_since is not None:
        statement = statement.where(table.c.updated_at >= updated_since)
    return _organisation_dicts(session, list(session.connection().execute(statement)))


def organisation(session: Session, organisation_id: int) -> dict[str, Any] | None:
    table = Organisation.__table__
    rows = list(session.connection().execute(select(table).where(table.c.id == organisation_id)))
    return _organisation_dicts(session, rows)[0] if rows else None


def update_organisation(session: Session, organisation_id: int, values: dict[str, Any]) -> None:
    table = Organisation.__table__
    session.connection().execute(update(table).where(table.c.id == organisation_id)
                                 .values(**values, updated_at=utcnow()))


def domain_owner(session: Session, domain: str) -> int | None:
    table = OrganisationDomain.__table__
    return session.connection().execute(
        select(table.c.organisation_id).where(table.c.domain == domain)).scalar()


def add_domain(session: Session, organisation_id: int, domain: str) -> None:
    session.connection().execute(insert(OrganisationDomain.__table__).values(
        organisation_id=organisation_id, domain=domain))


def remove_domain(session: Session, organisation_id: int, domain: str) -> None:
    table = OrganisationDomain.__table__
    session.connection().execute(table.delete().where(
        table.c.organisation_id == organisation_id, table.c.domain == domain))


def record(session: Session, subject: str, subject_id: int, actor: str,
           changes: list[tuple[str, str | None, str | None]]) -> None:
    """One history row per (field, old, new)."""
    if changes:
        session.connection().execute(insert(DirectoryEvent.__table__), [
            {"subject": subject, "subject_id": subject_id, "at": utcnow(), "actor": actor,
             "field": field, "old": old, "new": new} for field, old, new in changes])


def history(session: Session, subject: str, subject_id: int,
            limit: int = 200) -> list[dict[str, Any]]:
    """Newest first."""
    table = DirectoryEvent.__table__
    rows = session.connection().execute(
        select(table).where(table.c.subject == subject, table.c.subject_id == subject_id)
        .order_by(table.c.id.desc()).limit(limit))
    return [{"at": _iso(r.at), "actor": r.actor, "field": r.field, "old": r.old, "new": r.new}
            for r in rows]
