"""The ticket as it was when a notice was caused (issue #15).

A notice may be rendered long after its outbox row was written (a relay
outage, a retry): a reminder rendered after the ticket was closed must still
ask for an answer about a *pending* ticket. So the row's payload carries the
fields the templates read, taken when the row is written, and the worker
prefers them over the ticket's current row. Rows written before this (no
snapshot) render from the current row as before. Pure: plain dicts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The payload key of the snapshot.
KEY = "ticket_as_of"
#: The ticket fields a notice describes (never identities such as the
#: requester or the number: those do not change the mail's meaning).
FIELDS = ("subject", "status", "request_type", "priority", "assignee_id", "group_id",
          "category", "subcategory", "product", "version", "planned_version", "dev_item",
          "support_level")


def take(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot of a ticket row (only the fields it has; all JSON-safe)."""
    return {name: ticket[name] for name in FIELDS if name in ticket}


def with_snapshot(payload: Mapping[str, Any] | None, ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The payload to store: the caller's keys plus the snapshot (a caller's
    own snapshot, e.g. taken before a change, wins)."""
    data = dict(payload or {})
    data.setdefault(KEY, take(ticket))
    return data


def as_of(ticket: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket as the notice saw it: the current row with the snapshot's
    fields laid over it; unchanged when the payload has no snapshot."""
    snapshot = payload.get(KEY)
    if not isinstance(snapshot, Mapping):
        return dict(ticket)
    return {**ticket, **{k: v for k, v in snapshot.items() if k in FIELDS}}
