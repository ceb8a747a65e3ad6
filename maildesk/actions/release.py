"""`maildesk release publish VERSION`: the tickets that waited for it.

Every on_hold ticket linked to the version moves to rules.release_status
(solved by default) and its requester gets one release notice. The move is
a conditional update (on_hold and this planned version), so publishing
twice, or from two places, notifies nobody twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.models import Customer, Event, Ticket, utcnow
from maildesk.secret import load_secret
from maildesk.store import tickets as store
from maildesk.tickets import outbox
from maildesk.tickets import writes as tickets
from maildesk.tickets.labels import labels


@dataclass
class Release:
    version: str
    tickets: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)


def publish(engine: Engine, settings: Settings, version: str, note: str | None,
            actor: str) -> Release:
    result = Release(version)
    new_status = settings.rules.release_status
    secret = load_secret(settings)
    table, customer = Ticket.__table__, Customer.__table__
    with session_scope(engine) as session:
        connection = session.connection()
        candidates = connection.execute(
            select(table.c.id, table.c.number, table.c.status, customer.c.language)
            .outerjoin(customer, customer.c.id == table.c.requester_id)
            .where(table.c.status == "on_hold", table.c.planned_version == version)
            .order_by(table.c.number)
        ).all()
        for row in candidates:
            ticket = store.ticket_row(session, row.number)
            assert ticket is not None
            values, events = tickets.status_change(ticket, new_status, actor)
            claimed = connection.execute(
                update(table).where(table.c.id == row.id, table.c.status == "on_hold",
                                    table.c.planned_version == version)
                .values(updated_at=utcnow(), **values).returning(table.c.id)
            ).first()
            if claimed is None:  # published meanwhile by someone else
                continue
            events.append(tickets.event(row.id, actor, "release", f"version {version} published"))
            store.insert_many(session, Event, events)
            language = row.language or settings.mail.default_language
            result.outbox_ids += outbox.notify(
                session, settings, secret, row.number, "release",
                payload={"version": version, "note": note,
                         "new_status_label": labels(language)["status"][new_status]})
            result.tickets.append(row.number)
    return result
