"""Tickets and inbound mails as plain dicts (the JSON of the CLI and of the
HTTP API) and as tables.

The dict keys are a stable interface: scripts read them. Times are ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from maildesk.config import Settings
from maildesk.models import InboundMail, Ticket
from maildesk.schedule.calendar import BusinessCalendar
from maildesk.schedule.sla import light
from maildesk.store import inbound as inbound_store
from maildesk.store import third_party as third_party_store
from maildesk.store import tickets as store
from maildesk.tickets.notices import still_bouncing

STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
OUTCOMES = ("created", "appended", "reopened", "followup", "ignored", "held", "rejected")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_list(
    session: Session, settings: Settings, status: str | None, search: str | None, limit: int,
    sla: str | None = None, overdue: bool = False, *, before: int | None = None,
    updated_since: datetime | None = None, wanted: store.TicketFilter | None = None,
) -> list[dict[str, Any]]:
    """Tickets, newest first. With an SLA filter only tickets still being
    worked on (not solved or closed) are looked at, all of them."""
    window = {"before": before, "updated_since": updated_since, "wanted": wanted}
    if sla or overdue:
        tickets = [t for t in store.list_tickets(session, status, search, limit=None, **window)
                   if t.status not in ("solved", "closed")]
        rows = _ticket_dicts(session, tickets, settings)
        wanted = "red" if overdue else sla
        return [r for r in rows if r["sla"]["state"] == wanted][:limit]
    found = store.list_tickets(session, status, search, limit, **window)
    return _ticket_dicts(session, found, settings)


def _resolved_at(t: Ticket) -> datetime | None:
    return t.solved_at or t.closed_at if t.status in ("solved", "closed") else None


def _ticket_dicts(session: Session, tickets: list[Ticket] | Any,
                  settings: Settings) -> list[dict[str, Any]]:
    calendar = BusinessCalendar.from_settings(settings.calendar)
    now = datetime.now(UTC)
    customers = store.customers_by_id(
        session, [t.requester_id for t in tickets] + [t.end_customer_id for t in tickets])
    organisations = store.organisations_by_id(session, (t.organisation_id for t in tickets))
    participants = store.participants_of(session, (t.id for t in tickets))
    agents = store.agent_emails(session)
    groups = store.group_names(session)
    rows = []
    for t in tickets:
        requester = customers.get(t.requester_id) if t.requester_id else None
        organisation = organisations.get(t.organisation_id) if t.organisation_id else None
        rows.append({
            "number": t.number,
            "subject": t.subject,
            "status": t.status,
            "request_type": t.request_type,
            "priority": t.priority,
            "channel": t.channel,
            "requester": {"email": requester.email, "name": requester.name,
                          "language": requester.language, "confirmed": requester.confirmed,
                          "confirmed_at": iso(requester.confirmed_at),
                          "kind": requester.kind,
                          **_bounce(requester, now, settings)} if requester else None,
            # 2nd-level support: the partner's end customer, the level working it
            "end_customer": _end_customer(customers, t.end_customer_id),
            "support_level": t.support_level,
            "organisation": organisation.name if organisation else None,
            "participants": [
                {"email": p.email, "name": p.name, "role": p.role} for p in participants[t.id]
            ],
            "assignee": agents.get(t.assignee_id) if t.assignee_id else None,
            "group": groups.get(t.group_id) if t.group_id else None,
            "category": t.category,
            "subcategory": t.subcategory,
            "language": t.language,
            "follow_up_of": t.follow_up_of,
            "planned_version": t.planned_version,
            "dev_item": t.dev_item,
            "sla": light(t.request_type, t.created_at, t.first_response_at, _resolved_at(t),
                         now, settings.sla, calendar).as_dict(),
            "created_at": iso(t.created_at),
            "updated_at": iso(t.updated_at),
            "first_response_at": iso(t.first_response_at),
            "solved_at": iso(t.solved_at),
            "closed_at": iso(t.closed_at),
        })
    return rows


def _end_customer(customers: dict[int, Any], customer_id: int | None) -> dict[str, Any] | None:
    found = customers.get(customer_id) if customer_id else None
    return ({"email": found.email, "name": found.name, "language": found.language}
            if found else None)


def ticket_detail(session: Session, settings: Settings, number: int) -> dict[str, Any] | None:
    ticket = store.ticket_by_number(session, number)
    if ticket is None or ticket.id is None:
        return None
    data = _ticket_dicts(session, [ticket], settings)[0]
    messages = store.messages_of(session, ticket.id)
    attachments = store.attachments_of(session, (m.id for m in messages))
    data["messages"] = [
        {
            "id": m.id,
            "direction": m.direction,
            "author": m.author or None,
            "from": m.from_addr,
            "from_name": m.from_name,
            "to": _split(m.to_addrs),
            "cc": _split(m.cc_addrs),
            "subject": m.subject,
            "date": iso(m.date),
            "message_id": m.message_id,
            "in_reply_to": m.in_reply_to or None,
            "text": m.text,
            "text_display": m.text_display or m.text,
            "reply_to": m.reply_to or None,
            "authenticity": m.authenticity or None,
            "html": m.html or None,
            "inbound_id": m.inbound_id,
            "attachments": [
                {"id": a.id, "filename": a.filename, "content_type": a.content_type,
                 "size": a.size,
                 "sha256": a.sha256, "inline": a.inline}
                for a in attachments[m.id]
            ],
        }
        for m in messages
    ]
    data["events"] = [
        {"at": iso(e.at), "actor": e.actor, "field": e.field, "old": e.old, "new": e.new}
        for e in store.events_of(session, ticket.id)
    ]
    data["third_party"] = [
        {"id": r["id"], "kind": r["kind"], "to": r["email"], "text": r["text"],
         "actor": r["actor"], "created_at": iso(r["created_at"]),
         "answered_at": iso(r["answered_at"])}
        for r in third_party_store.requests_of(session, ticket.id)
    ]
    return data


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def inbound_list(
    session: Session, state: str | None, outcome: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = inbound_store.list_inbound(session, state, outcome, limit)
    return [_inbound_dict(row) for row in rows]


def inbound_exists(session: Session, inbound_id: int) -> bool:
    return session.get(InboundMail, inbound_id) is not None


def _inbound_dict(row: InboundMail) -> dict[str, Any]:
    return {
        "id": row.id,
        "received_at": iso(row.received_at),
        "source": row.source,
        "message_id": row.message_id or None,
        "sha256": row.sha256,
        "size": row.size,
        "state": row.state,
        "outcome": row.outcome,
        "ticket": row.ticket_number,
        "reason": row.reason,
        "error": row.error,
    }


def table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """Left-aligned columns; the last column takes what is left."""
    if not rows:
        return empty
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    widths[-1] = 0
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def ticket_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["NUMBER", "STATUS", "TYPE", "PRIO", "SLA", "REQUESTER", "UPDATED", "SUBJECT"],
        [
            [
                f"#{r['number']}", r["status"], r["request_type"], r["priority"],
                r["sla"]["state"] if r["status"] not in ("solved", "closed") else "-",
                _clip(r["requester"]["email"] if r["requester"] else "-", 32),
                (r["updated_at"] or "")[:16].replace("T", " "),
                _clip(r["subject"], 60),
            ]
            for r in rows
        ],
        "no tickets",
    )


def inbound_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["ID", "RECEIVED", "SOURCE", "STATE", "OUTCOME", "TICKET", "REASON"],
        [
            [
                str(r["id"]), (r["received_at"] or "")[:19].replace("T", " "), r["source"],
                r["state"], r["outcome"] or "-", f"#{r['ticket']}" if r["ticket"] else "-",
                _clip(r["error"] or r["reason"] or "", 70),
            ]
            for r in rows
        ],
        "no inbound mails",
    )


def held_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["ID", "HELD", "REASON", "SENDER", "TICKET", "SUBJECT", "STATE"],
        [
            [
                str(r["id"]), (r["held_at"] or "")[:19].replace("T", " "), r["reason"],
                _clip(r["sender"] or "-", 40), f"#{r['ticket']}" if r["ticket"] else "-",
                _clip(r["subject"] or "", 40),
                r["state"] + (f" ({r['result']})" if r["result"] else ""),
            ]
            for r in rows
        ],
        "no held mails",
    )


def _bounce(customer: Any, now: datetime, settings: Settings) -> dict[str, Any]:
    """The requester's bounce as the notices see it: an expired bounce
    (notify.bounce_expiry_days) no longer stops mail."""
    bouncing = still_bouncing(bool(customer.bouncing), customer.bounced_at, now,
                              settings.notify.bounce_expiry_days)
    return {"bouncing": bouncing, "bounced_at": iso(customer.bounced_at) if bouncing else None,
            "bounce_reason": (customer.bounce_reason or "") if bouncing else ""}


def _bounce_line(requester: dict[str, Any] | None) -> list[str]:
    """Where automatic mail is not sent: the requester's address bounces."""
    if not requester or not requester.get("bouncing"):
        return []
    since = (requester.get("bounced_at") or "?")[:16].replace("T", " ")
    reason = f": {requester['bounce_reason']}" if requester.get("bounce_reason") else ""
    return [f"not sent to {requester['email']}: address bouncing since {since}{reason}"
            " (clear: maildesk customers set ID --clear-bouncing)"]


def ticket_text(data: dict[str, Any]) -> str:
    """A readable page: header fields, then each message, then the history."""
    requester = data["requester"]
    lines = [
        f"#{data['number']}  {data['subject']}",
        f"status: {data['status']}   type: {data['request_type']}   "
        f"priority: {data['priority']}   channel: {data['channel']}",
        f"requester: {_person(requester)}"
        + (("   (address confirmed)" if requester["confirmed"] else "   (address not confirmed)")
           if requester else "")
        + (f"   organisation: {data['organisation']}" if data["organisation"] else ""),
        *_bounce_line(requester),
    ]
    for followers, heading in ((False, "cc"), (True, "followers")):
        people = [_person(p) for p in data["participants"]
                  if (p["role"] == "follower") == followers]
        if people:
            lines.append(f"{heading}: " + ", ".join(people))
    if data["category"]:
        lines.append(f"category: {data['category']}"
                     + (f"/{data['subcategory']}" if data["subcategory"] else ""))
    if data["end_customer"] or data["support_level"] != 1:
        lines.append(f"end customer: {_person(data['end_customer'])}   "
                     f"support level: {data['support_level']}"
                     + ("  (handed to the central support)" if data["support_level"] == 2
                        else ""))
    if data["assignee"] or data["group"]:
        lines.append(f"assignee: {data['assignee'] or '-'}   group: {data['group'] or '-'}")
    if data["follow_up_of"]:
        lines.append(f"follow-up of: #{data['follow_up_of']}")
    lines.append(f"created: {data['created_at']}   updated: {data['updated_at']}")
    for index, m in enumerate(data["messages"], 1):
        who = m["author"] or m["from"]
        lines += ["", f"--- message {index} ({m['direction']}) from {who} at {m['date']}",
                  f"subject: {m['subject']}"]
        if m["authenticity"]:
            lines.append(f"sender: {m['authenticity']}")
        lines += [f"attachment {a['id']}: {a['filename']} ({a['content_type']}, "
                  f"{a['size']} bytes)"
                  for a in m["attachments"]]
        lines += ["", m["text_display"].rstrip()]
    if data.get("third_party"):
        lines += ["", "--- third parties"] + [_request_line(r) for r in data["third_party"]]
    lines += ["", "--- history"]
    lines += [f"{e['at'][:19].replace('T', ' ')}  {e['actor']}  {e['field']}: "
              f"{e['old'] + ' -> ' if e['old'] else ''}{e['new'] or ('-' if e['old'] else '')}"
              for e in data["events"]]
    return "\n".join(lines)


def _request_line(request: dict[str, Any]) -> str:
    """One statement asked for or forward, and whether it was answered."""
    what = "asked" if request["kind"] == "ask" else "forwarded to"
    answered = request["answered_at"]
    state = f"answered {answered[:16].replace('T', ' ')}" if answered else "no answer yet"
    return (f"{request['created_at'][:16].replace('T', ' ')}  {what} {request['to']} "
            f"by {request['actor']}  {state}")


def _person(person: dict[str, str] | None) -> str:
    if not person:
        return "-"
    return f"{person['name']} <{person['email']}>" if person["name"] else person["email"]
