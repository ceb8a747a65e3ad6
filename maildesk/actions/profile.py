"""A customer changes their own profile on the portal (issue 16).

Inside the caller's transaction (web/portal/profile_page.py opens it with
the session check, so a session ended meanwhile saves nothing). Whose row
is the caller's `customer_id`, taken from the session, never from the
form. Only the fields a customer may set are accepted here, whatever the
caller hands in: role, ticket access, organisation and the address decide
what someone sees and stay with the agents (actions/directory.py).

Each changed field leaves one directory_event row with the customer's
address as actor, as an agent's change does (store/directory.record), so
the directory's history shows who changed what. The language is the one
the notifications are written in (tickets/outbox.py reads it from the
row), so the next mail follows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from maildesk.models import utcnow
from maildesk.store import directory, portal

#: What a customer may change of themselves.
FIELDS = frozenset({"name", "phone", "job_title", "language", "info_recipient"})


class ProfileRefused(ValueError):
    """A field a customer may not set: a programming error of the caller."""


def _text(value: Any) -> str | None:
    """A value as a history row keeps it (booleans as true/false, like
    actions/directory.py's lines)."""
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def change_profile(session: Session, customer_id: int, actor: str,
                   wanted: Mapping[str, Any]) -> list[str]:
    """Write the fields of `wanted` that differ (already checked by the
    form) to the customer's row; the names of the changed fields."""
    refused = sorted(set(wanted) - FIELDS)
    if refused:
        raise ProfileRefused(f"{refused[0]}: not a field a customer changes")
    current = portal.profile_of(session, customer_id, utcnow())
    if current is None:
        raise ProfileRefused(f"no customer {customer_id}")
    values = {f: v for f, v in wanted.items() if v != getattr(current, f)}
    if values:
        directory.update_customer(session, customer_id, values)
        directory.record(session, "customer", customer_id, actor,
                         [(f, _text(getattr(current, f)), _text(v)) for f, v in values.items()])
    return list(values)
