"""Request type, priority and participants of a new ticket."""

from __future__ import annotations

from maildesk.config import PRIORITY_FOR_TYPE
from maildesk.types import Address, Context, Lookup, ParsedMail, Route, Triage


def route_by_recipient(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """The first of our addresses the mail went to decides the route; the
    priority follows the request type unless the route sets one (SPEC §3)."""
    route = Route()
    for address in (*ctx.recipients, *(a.email for a in (*mail.to, *mail.cc))):
        found = ctx.routes.get(ctx.base_address(address)) if ctx.is_ours(address) else None
        if found is not None:
            route = found
            break
    priority = route.priority or PRIORITY_FOR_TYPE.get(route.request_type, "low")
    return triage.but(route=route, priority=priority)


def collect_participants(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """Everyone in To/CC except us and the requester follows the ticket."""
    requester = triage.requester.email if triage.requester else None
    seen: dict[str, Address] = {}
    for address in (*mail.to, *mail.cc):
        if address.email == requester or ctx.is_ours(address.email):
            continue
        seen.setdefault(address.email, address)
    return triage.but(participants=tuple(seen.values()))
