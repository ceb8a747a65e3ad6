"""Held mail: one place for every mail maildesk did not turn into a ticket.

Auto-replies, bounces, list mail, rate-limited and blocked senders, own
mail coming back, an agent's address without proof and DMARC failures are
kept with their reason (Zendesk's "suspended tickets"). A person lists
them, recovers one (it becomes a new ticket or lands on its ticket, as if
it had been accepted, with notifications: `MailProcessor.recover`) or
deletes it; what nobody recovered is purged after `held.keep_days`, raw
bytes included. The inbound row stays either way, so a redelivery of the
same mail is still recognised as a duplicate.

Entry points here open their own transactions; each entry is resolved
with a conditional UPDATE from state "held", so two people (or a person
and the purge) never both act on one mail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from maildesk.models import HeldMail, InboundMail, InboundRaw, utcnow

log = logging.getLogger(__name__)

STATES = ("held", "recovered", "deleted", "purged")
#: Entries one purge transaction covers.
PURGE_CHUNK = 500


@dataclass(frozen=True)
class Resolution:
    inbound_id: int
    ok: bool
    message: str


def list_held(engine: Engine, *, reason: str | None = None, state: str | None = "held",
              limit: int | None = 200) -> list[dict[str, Any]]:
    """Newest first, with what a person decides by: who, what, why."""
    table, inbound = HeldMail.__table__, InboundMail.__table__
    statement = (select(table, inbound.c.received_at, inbound.c.source, inbound.c.message_id)
                 .join(inbound, inbound.c.id == table.c.inbound_id)
                 .order_by(table.c.inbound_id.desc()))
    if reason:
        statement = statement.where(table.c.reason == reason)
    if state:
        statement = statement.where(table.c.state == state)
    if limit is not None:
        statement = statement.limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [_as_dict(row) for row in rows]


def held_ids(engine: Engine, reason: str | None = None) -> list[int]:
    """Every mail still held (for --all), oldest first."""
    table = HeldMail.__table__
    statement = select(table.c.inbound_id).where(table.c.state == "held")
    if reason:
        statement = statement.where(table.c.reason == reason)
    with engine.connect() as connection:
        return list(connection.execute(statement.order_by(table.c.inbound_id)).scalars())


def delete_held(engine: Engine, inbound_ids: Sequence[int], actor: str) -> list[Resolution]:
    """Discard held mails: the entry is marked deleted and the raw bytes
    go (a held mail may be phishing; nobody needs it again)."""
    results = []
    for inbound_id in inbound_ids:
        with engine.begin() as connection:
            done = _resolve(connection, inbound_id, "deleted", actor, utcnow())
            if done:
                connection.execute(delete(InboundRaw.__table__)
                                   .where(InboundRaw.__table__.c.inbound_id == inbound_id))
        results.append(Resolution(inbound_id, done, "deleted" if done else
                                  "not held (no such held mail, or already recovered, "
                                  "deleted or purged)"))
    if any(r.ok for r in results):
        log.info("held mail deleted by %s: %s", actor, [r.inbound_id for r in results if r.ok])
    return results


def purge(engine: Engine, keep_days: int, now: datetime) -> int:
    """Held mails older than keep_days that nobody recovered: entry marked
    purged, raw bytes deleted. Returns how many."""
    table = HeldMail.__table__
    cutoff = now - timedelta(days=keep_days)
    with engine.connect() as connection:
        due = list(connection.execute(
            select(table.c.inbound_id).where(table.c.state == "held", table.c.held_at < cutoff)
            .order_by(table.c.inbound_id)).scalars())
    purged = 0
    for start in range(0, len(due), PURGE_CHUNK):
        chunk = due[start:start + PURGE_CHUNK]
        with engine.begin() as connection:
            claimed = list(connection.execute(
                update(table).where(table.c.inbound_id.in_(chunk), table.c.state == "held")
                .values(state="purged", resolved_at=now, resolved_by="maildesk (purge)")
                .returning(table.c.inbound_id)).scalars())
            if claimed:
                connection.execute(delete(InboundRaw.__table__)
                                   .where(InboundRaw.__table__.c.inbound_id.in_(claimed)))
        purged += len(claimed)
    if purged:
        log.info("purged %d held mails older than %d days", purged, keep_days)
    return purged


def _resolve(connection: Any, inbound_id: int, state: str, actor: str, now: datetime) -> bool:
    table = HeldMail.__table__
    result = connection.execute(
        update(table).where(table.c.inbound_id == inbound_id, table.c.state == "held")
        .values(state=state, resolved_at=now, resolved_by=actor[:320]))
    return bool(result.rowcount)


def _as_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.inbound_id, "reason": row.reason, "detail": row.detail or None,
        "sender": row.sender or None, "subject": row.subject, "ticket": row.ticket_number,
        "held_at": _iso(row.held_at), "received_at": _iso(row.received_at),
        "source": row.source, "message_id": row.message_id or None, "state": row.state,
        "resolved_at": _iso(row.resolved_at), "resolved_by": row.resolved_by or None,
        "result": row.result or None,
    }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite gives naive UTC through a plain select
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.isoformat()
