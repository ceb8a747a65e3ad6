"""The sweep: apply the time-based rules to every ticket that is due.

Selection is an indexed range query per rule (see schedule/rules.py cutoffs), never
a loop over all tickets. Each due ticket is claimed with a conditional
UPDATE that only succeeds from the state the rule expects (pending with no
reminder yet, ...): two sweeps running at once — two `serve` instances, or
`maildesk sweep` beside a running daemon — can never both remind the same
ticket, on SQLite or PostgreSQL. The change, its events and its outbox row
commit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from maildesk.actions import held
from maildesk.config import Settings
from maildesk.mail.automatic import is_noreply_address
from maildesk.mail.tokens import new_message_id
from maildesk.models import Agent, AgentGroup, Customer, Event, GroupMember, Outbox, Ticket, utcnow
from maildesk.schedule import escalation, rules
from maildesk.schedule.calendar import BusinessCalendar
from maildesk.schedule.sla import light
from maildesk.store import portal as portal_store
from maildesk.tickets import snapshot
from maildesk.tickets.notices import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    automatic_refusal,
    still_bouncing,
)

log = logging.getLogger(__name__)

CHUNK = 500
ACTOR = "maildesk (rules)"


@dataclass
class SweepReport:
    now: datetime
    dry_run: bool
    actions: list[dict[str, Any]] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    held_purged: int = 0  # held mails older than held.keep_days, purged
    portal_pruned: int = 0  # spent portal login links and ended sessions deleted

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for action in self.actions:
            result[action["action"]] = result.get(action["action"], 0) + 1
        return result

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "counts": self.counts(),
                "actions": self.actions, "held_purged": self.held_purged,
                "portal_pruned": self.portal_pruned}


async def sweep_forever(engine: Engine, settings: Settings, secret: bytes,
                        stop: asyncio.Event, dispatch: Callable[[list[int]], None]) -> None:
    """serve's scheduler: the time-based rules every rules.sweep_seconds
    until stop (all instances may run it: each ticket is claimed once).
    `dispatch` gets each round's outbox ids (the daemon's broker)."""
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(run_sweep, engine, settings, secret, utcnow())
            dispatch(report.outbox_ids)
        except Exception:  # the next round tries again
            log.exception("rules sweep failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.rules.sweep_seconds)


def run_sweep(engine: Engine, settings: Settings, secret: bytes, now: datetime,
              dry_run: bool = False) -> SweepReport:
    calendar = BusinessCalendar.from_settings(settings.calendar)
    report = SweepReport(now, dry_run)
    r = settings.rules
    first = rules.pending_cutoff(now, calendar, r.reminder_business_days)
    second = rules.pending_cutoff(now, calendar, r.second_reminder_business_days)
    table = Ticket.__table__
    # Reminder 2 before reminder 1: a ticket reminded now restarts its clock
    # and can never get both in one sweep.
    plans = [
        (rules.REMINDER_2, (table.c.status == "pending") & (table.c.reminders_sent == 1)
         & (table.c.pending_since < second)),
        (rules.REMINDER_1, (table.c.status == "pending") & (table.c.reminders_sent == 0)
         & (table.c.pending_since < first)),
        (rules.AUTO_CLOSE, (table.c.status == "solved")
         & (table.c.solved_at <= rules.solved_cutoff(now, r))),
    ]
    for action, condition in plans:
        with engine.connect() as connection:
            candidates = connection.execute(
                select(table.c.id).where(condition).order_by(table.c.id)).scalars().all()
        for start in range(0, len(candidates), CHUNK):
            chunk = list(candidates[start:start + CHUNK])
            if dry_run:
                with engine.connect() as connection:
                    report.actions += _describe(connection, chunk, action)
                continue
            with engine.begin() as connection:
                claimed = _claim(connection, action, condition, chunk, now)
                if claimed:
                    report.actions += _describe(connection, claimed, action)
                    report.outbox_ids += _apply(connection, settings, secret, action,
                                                claimed, now)
    _escalate(engine, settings, secret, now, calendar, report)
    if not dry_run:
        report.held_purged = held.purge(engine, settings.held.keep_days, now)
        with engine.begin() as connection:
            links, sessions = portal_store.prune(connection, now)
        report.portal_pruned = links + sessions
        if report.portal_pruned:
            log.info("sweep: %d spent portal login links and %d ended portal sessions deleted",
                     links, sessions)
    if report.actions and dry_run:
        log.info("dry run: sweep at %s would do %s (nothing changed, nothing sent)",
                 now.isoformat(), report.counts())
    elif report.actions:
        log.info("sweep at %s: %s", now.isoformat(), report.counts())
    return report


def _claim(connection: Connection, action: str, condition: Any, ids: list[int],
           now: datetime) -> list[int]:
    """The conditional UPDATE: only tickets still in the expected state."""
    table = Ticket.__table__
    values: dict[str, Any] = {"updated_at": now}
    if action == rules.REMINDER_1:  # the clock restarts for reminder 2
        values.update(reminders_sent=1, pending_since=now)
    elif action == rules.REMINDER_2:
        values.update(reminders_sent=2, status="closed", closed_at=now, pending_since=None)
    else:
        values.update(status="closed", closed_at=now)
    return list(connection.execute(
        update(table).where(table.c.id.in_(ids), condition).values(**values)
        .returning(table.c.id)
    ).scalars().all())


def _describe(connection: Connection, ids: list[int], action: str) -> list[dict[str, Any]]:
    table = Ticket.__table__
    rows = connection.execute(
        select(table.c.number).where(table.c.id.in_(ids)).order_by(table.c.number)).all()
    return [{"ticket": r.number, "action": action} for r in rows]


def _apply(connection: Connection, settings: Settings, secret: bytes, action: str,
           ids: list[int], now: datetime) -> list[int]:
    """Events and the customer's notice for the claimed tickets, in bulk."""
    ticket, customer = Ticket.__table__, Customer.__table__
    rows = connection.execute(
        select(ticket.c.id, ticket.c.number, ticket.c.language, customer.c.email,
               customer.c.language.label("customer_language"), customer.c.bouncing,
               customer.c.bounced_at,
               *(ticket.c[name].label(f"as_of_{name}") for name in snapshot.FIELDS))
        .outerjoin(customer, customer.c.id == ticket.c.requester_id)
        .where(ticket.c.id.in_(ids))
    ).all()
    events, notices = [], []
    for row in rows:
        if action == rules.REMINDER_1:
            events.append(_event(row.id, now, "reminder", "reminder 1 sent"))
        else:
            old = "pending" if action == rules.REMINDER_2 else "solved"
            events.append(_event(row.id, now, "status", "closed", old))
            events.append(_event(row.id, now, "auto_close", {
                rules.REMINDER_2: "no answer after the second reminder",
                rules.AUTO_CLOSE: f"{settings.rules.solved_close_days} days after solved",
            }[action]))
        bouncing = still_bouncing(bool(row.bouncing), row.bounced_at, now,
                                  settings.notify.bounce_expiry_days)
        if automatic_refusal(row.email, {row.email.lower()} if bouncing else ()) is None:
            notices.append({
                "created_at": now, "kind": action, "ticket_id": row.id,
                "message_row_id": None, "to_addrs": row.email, "cc_addrs": "",
                "language": row.customer_language or row.language,
                "auto_submitted": AUTO_REPLIED if action != rules.AUTO_CLOSE
                else AUTO_GENERATED,
                "message_id": new_message_id(secret, row.number, settings.message_id_domain),
                "payload": _payload(settings, action, {  # the ticket as just changed
                    name: row._mapping[f"as_of_{name}"] for name in snapshot.FIELDS}),
                "state": "queued", "attempts": 0, "next_attempt_at": now,
            })
    if events:
        connection.execute(insert(Event.__table__), events)
    if not notices:
        return []
    outbox = Outbox.__table__
    return list(connection.execute(
        insert(outbox).returning(outbox.c.id), notices).scalars().all())


def _payload(settings: Settings, action: str, as_of: dict[str, Any]) -> str:
    """The rule's template keys and the ticket as the rule left it
    (tickets/snapshot.py): a reminder sent late still shows "pending"."""
    import json

    data: dict[str, Any] = {snapshot.KEY: as_of}
    if action == rules.REMINDER_1:
        data["days_left"] = settings.rules.second_reminder_business_days
    if action == rules.AUTO_CLOSE:
        data["days"] = settings.rules.solved_close_days
    return json.dumps(data, ensure_ascii=False)


def _event(ticket_id: int, now: datetime, field_name: str, new: str,
           old: str | None = None) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "at": now, "actor": ACTOR, "field": field_name,
            "old": old, "new": new}


def _escalate(engine: Engine, settings: Settings, secret: bytes, now: datetime,
              calendar: BusinessCalendar, report: SweepReport) -> None:
    """The SLA escalations (schedule/escalation.py): each ticket still being
    worked on whose light is worse than the last notice sent gets one. The
    mark is set by a conditional UPDATE from the value read, in the same
    transaction as the outbox rows: a crash or a second sweep never sends
    twice. Solved and closed tickets lose their mark (and get nothing)."""
    table = Ticket.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.id, table.c.number, table.c.request_type, table.c.created_at,
                   table.c.first_response_at, table.c.sla_alerted, table.c.assignee_id,
                   table.c.group_id)
            .where(table.c.status.not_in(("solved", "closed")), table.c.sla_alerted != "red")
            .order_by(table.c.number)).all()
        team = _teams(connection) if rows else None
    due = []
    for row in rows:
        lit = light(row.request_type, row.created_at, row.first_response_at, None, now,
                    settings.sla, calendar)
        level = escalation.due(lit.state, row.sla_alerted or "")
        if level is None or team is None:
            continue
        to = escalation.recipients(level, team(row.assignee_id, row.group_id),
                                   settings.sla.escalate_to, settings.sla.escalate_red_to,
                                   settings.sla.escalate_fallback)
        due.append((row, level, escalation.at_risk(lit, level), to))
    if report.dry_run:
        report.actions += [{"ticket": row.number, "action": escalation.KINDS[level],
                            "to": list(to), **risk.as_payload(level)}
                           for row, level, risk, to in due]
        return
    for row, level, risk, to in due:
        with engine.begin() as connection:
            claimed = connection.execute(
                update(table).where(table.c.id == row.id,
                                    table.c.sla_alerted == (row.sla_alerted or ""))
                .values(sla_alerted=level)).rowcount
            if claimed != 1:
                continue  # another sweep got there first
            report.actions.append({"ticket": row.number, "action": escalation.KINDS[level],
                                   "to": list(to), **risk.as_payload(level)})
            report.outbox_ids += _escalation_rows(connection, settings, secret, row, level,
                                                  risk, to, now)
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.status.in_(("solved", "closed")),
                                               table.c.sla_alerted != "")
                           .values(sla_alerted=""))


def _teams(connection: Connection) -> Callable[[int | None, int | None], escalation.Team]:
    """Who works a ticket, from the agents and groups read once per sweep."""
    agent, member, group = Agent.__table__, GroupMember.__table__, AgentGroup.__table__
    agents = {r.id: r.email for r in connection.execute(
        select(agent.c.id, agent.c.email).where(agent.c.active)).all()}
    members: dict[int, list[str]] = {}
    for r in connection.execute(select(member.c.group_id, member.c.agent_id)).all():
        if r.agent_id in agents:
            members.setdefault(r.group_id, []).append(agents[r.agent_id])
    addresses = {r.id: r.email for r in connection.execute(
        select(group.c.id, group.c.email)).all()}
    everyone = tuple(agents.values())

    def team(assignee_id: int | None, group_id: int | None) -> escalation.Team:
        return escalation.Team(
            assignee=agents.get(assignee_id) if assignee_id else None,
            group_members=tuple(members.get(group_id, ())) if group_id else (),
            group_address=addresses.get(group_id) if group_id else None,
            all_agents=everyone)
    return team


def _escalation_rows(connection: Connection, settings: Settings, secret: bytes, row: Any,
                     level: str, risk: escalation.Risk, to: tuple[str, ...],
                     now: datetime) -> list[int]:
    """The notices of one escalation and its history line."""
    import json

    what = "first response" if risk.measure == "first_response" else "resolution"
    connection.execute(insert(Event.__table__), [_event(
        row.id, now, "sla", f"{level}: {what} limit {risk.limit_hours:g} h, "
        + (f"{risk.hours_left:.1f} h left" if risk.hours_left > 0
           else f"overdue by {-risk.hours_left:.1f} h"), row.sla_alerted or None)])
    ours = set(settings.mail.addresses)
    languages = {a.email: a.language for a in settings.agents}
    notices = [{
        "created_at": now, "kind": escalation.KINDS[level], "ticket_id": row.id,
        "message_row_id": None, "to_addrs": address, "cc_addrs": "",
        "language": languages.get(address, settings.mail.default_language),
        "auto_submitted": AUTO_GENERATED,
        "message_id": new_message_id(secret, row.number, settings.message_id_domain),
        "payload": json.dumps(risk.as_payload(level)),
        "state": "queued", "attempts": 0, "next_attempt_at": now,
    } for address in to if address not in ours and not is_noreply_address(address)]
    if not notices:
        return []
    outbox = Outbox.__table__
    return list(connection.execute(
        insert(outbox).returning(outbox.c.id), notices).scalars().all())
