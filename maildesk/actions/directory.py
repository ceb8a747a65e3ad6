"""Changes to customers and organisations, from the CLI and the API alike.

Each change is one transaction with its history rows (directory_event, the
actor named), validated here so both doors refuse the same input with the
same words. Roles, ticket access and organisation membership decide who
sees which tickets (access.py), so only an administrator changes them:
`admin=False` callers are refused by field, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from maildesk import access
from maildesk.db import session_scope
from maildesk.errors import PermanentError
from maildesk.models import utcnow
from maildesk.store import directory
from maildesk.tickets import second_level

LANGUAGES = ("de", "en")
#: Customer fields only an administrator changes (they decide visibility).
ADMIN_FIELDS = frozenset({"role", "ticket_access", "organisation_id"})
CUSTOMER_FIELDS = frozenset({"name", "phone", "language", "confirmed", "bouncing",
                             "info_recipient", "kind"}) | ADMIN_FIELDS
PHONE_PATTERN = r"^[0-9+()./ -]{0,50}$"
#: A mail domain as it appears after the @ (lower case, at least one dot).
DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DirectoryError(PermanentError):
    """Refused input, phrased for the agent; `status` is the API's answer
    (404 no such row, 403 needs admin, 409 a domain owned elsewhere, 422)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Changed:
    #: "field: old -> new" lines, as `maildesk tickets set` prints them.
    changes: list[str]
    row: dict[str, Any]


def _text(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or _CONTROL.search(value) or len(value.strip()) > limit:
        raise DirectoryError(f"{field}: text of at most {limit} characters, one line", field)
    return value.strip()


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise DirectoryError(f"{field}: true or false", field)
    return value


def _customer_values(session: Any, current: dict[str, Any],
                     wanted: dict[str, Any]) -> dict[str, Any]:
    """The column values to write, validated; only those that differ."""
    values: dict[str, Any] = {}
    for field, value in wanted.items():
        if field == "name":
            value = _text(field, value, 255)
        elif field == "phone":
            value = _text(field, value, 50)
            if not re.match(PHONE_PATTERN, value):
                raise DirectoryError("phone: digits, spaces and + ( ) . / - only", field)
        elif field == "language":
            if value not in LANGUAGES:
                raise DirectoryError(f"language: one of {', '.join(LANGUAGES)}", field)
        elif field in ("confirmed", "info_recipient"):
            value = _flag(field, value)
        elif field == "bouncing":
            if value is not False:
                raise DirectoryError("bouncing: can only be cleared (false); maildesk sets it "
                                     "when mail to the address bounces", field)
        elif field == "kind":  # 2nd-level support: internal is a partner
            if value not in second_level.KINDS:
                raise DirectoryError(f"kind: one of {', '.join(second_level.KINDS)} (internal: "
                                     "a partner serving end customers of its own)", field)
        elif field == "role":
            if value not in access.ROLES:
                raise DirectoryError(f"role: one of {', '.join(access.ROLES)}", field)
        elif field == "ticket_access":
            if value is not None and value not in access.SETTINGS:
                raise DirectoryError(
                    f"ticket_access: one of {', '.join(access.SETTINGS)}, or null for the "
                    "default of the role", field)
        elif field == "organisation_id":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or directory.organisation(session, value) is None):
                raise DirectoryError(f"organisation_id: no organisation {value}", field)
        else:
            raise DirectoryError(f"{field}: not a field of a customer", field)
        old = (current["organisation"] or {}).get("id") if field == "organisation_id" \
            else current[field]
        if value != old:
            values[field] = value
    return values


def _line(field: str, old: Any, new: Any) -> tuple[str, str | None, str | None]:
    def text(value: Any) -> str | None:
        if value is None:
            return None
        return str(value).lower() if isinstance(value, bool) else str(value)
    return field, text(old), text(new)


def change_customer(engine: Engine, customer_id: int, actor: str, wanted: dict[str, Any], *,
                    admin: bool) -> Changed:
    """Apply `wanted` (field -> value; None clears ticket_access and
    organisation_id) to the customer, with one history row per field."""
    refused = sorted(ADMIN_FIELDS & wanted.keys()) if not admin else []
    if refused:
        raise DirectoryError(f"{refused[0]}: only an administrator changes it (it decides "
                             "who sees which tickets)", refused[0], 403)
    with session_scope(engine) as session:
        current = directory.customer(session, customer_id)
        if current is None:
            raise DirectoryError(f"no customer {customer_id}", None, 404)
        values = _customer_values(session, current, wanted)
        if "confirmed" in values:
            values["confirmed_at"] = utcnow() if values["confirmed"] else None
        if values.get("bouncing") is False:  # cleared: the bounce's time and reason go too
            values.update(bounced_at=None, bounce_reason="")
        lines = []
        for field, value in values.items():
            if field in ("confirmed_at", "bounced_at", "bounce_reason"):
                continue
            old = ((current["organisation"] or {}).get("id") if field == "organisation_id"
                   else current[field])
            lines.append(_line(field, old, value))
        if values:
            directory.update_customer(session, customer_id, values)
            directory.record(session, "customer", customer_id, actor, lines)
        row = directory.customer(session, customer_id)
    assert row is not None
    return Changed([f"{f}: {o or '-'} -> {n or '-'}" for f, o, n in lines], row)


def _domain(value: Any) -> str:
    domain = value.strip().lower() if isinstance(value, str) else ""
    if len(domain) > 255 or not re.match(DOMAIN_PATTERN, domain):
        raise DirectoryError(f"domains: {value!r} is not a mail domain like firma.de",
                             "domains")
    return domain


def change_organisation(engine: Engine, organisation_id: int, actor: str, *,
                        name: str | None = None, ticket_access: str | None = None,
                        add_domains: Sequence[str] = (), remove_domains: Sequence[str] = (),
                        ) -> Changed:
    """Rename, set who of the organisation sees its tickets, and move mail
    domains to it (a domain of another organisation is refused with its
    owner named; removing one does not move customers already known)."""
    try:
        return _change_organisation(engine, organisation_id, actor, name, ticket_access,
                                    add_domains, remove_domains)
    except IntegrityError:  # the domain was claimed by another change meanwhile
        raise DirectoryError("domains: a domain was just given to another organisation; "
                             "look again and retry", "domains", 409) from None


def _change_organisation(engine: Engine, organisation_id: int, actor: str, name: str | None,
                         ticket_access: str | None, add_domains: Sequence[str],
                         remove_domains: Sequence[str]) -> Changed:
    with session_scope(engine) as session:
        current = directory.organisation(session, organisation_id)
        if current is None:
            raise DirectoryError(f"no organisation {organisation_id}", None, 404)
        values: dict[str, Any] = {}
        lines = []
        if name is not None:
            name = _text("name", name, 255)
            if not name:
                raise DirectoryError("name: an organisation needs a name", "name")
            if name != current["name"]:
                values["name"] = name
                lines.append(_line("name", current["name"], name))
        if ticket_access is not None:
            if ticket_access not in access.SETTINGS:
                raise DirectoryError(f"ticket_access: one of {', '.join(access.SETTINGS)}",
                                     "ticket_access")
            if ticket_access != current["ticket_access"]:
                values["ticket_access"] = ticket_access
                lines.append(_line("ticket_access", current["ticket_access"], ticket_access))
        for domain in map(_domain, add_domains):
            owner = directory.domain_owner(session, domain)
            if owner == organisation_id:
                continue
            if owner is not None:
                raise DirectoryError(f"domains: {domain} belongs to organisation {owner}",
                                     "domains", 409)
            directory.add_domain(session, organisation_id, domain)
            lines.append(_line("domain", None, domain))
        for domain in map(_domain, remove_domains):
            if domain not in current["domains"]:
                raise DirectoryError(f"domains: {domain} is not a domain of this organisation",
                                     "domains")
            directory.remove_domain(session, organisation_id, domain)
            lines.append(_line("domain", domain, None))
        if lines:
            directory.update_organisation(session, organisation_id, values)
            directory.record(session, "organisation", organisation_id, actor, lines)
        row = directory.organisation(session, organisation_id)
    assert row is not None
    return Changed([f"{f}: {o or '-'} -> {n or '-'}" for f, o, n in lines], row)
