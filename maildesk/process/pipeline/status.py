"""What a mail on an existing ticket does to its status (SPEC §3)."""

from __future__ import annotations

from maildesk.tickets.lifecycle import next_status
from maildesk.types import Context, Lookup, ParsedMail, Triage


def identify_role(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    if triage.requester is not None and triage.requester.email in ctx.agents:
        return triage.but(sender_role="agent")
    return triage


def decide_status(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """A customer's reply: pending -> open, solved -> reopened, closed -> a
    follow-up ticket. An agent's mail is kept on the ticket as it is; agent
    replies by mail are sent on to the customer by the worker."""
    if triage.action != "append" or triage.ticket is None:
        return triage
    info = lookup.ticket(triage.ticket)
    if info is None:
        return triage.but(action="create", ticket=None, thread_via=None)
    if triage.sender_role == "agent":
        return triage.but(new_status=info.status)
    transition = next_status(info.status, "customer_reply")
    if transition.effect == "followup":
        return triage.but(action="followup", new_status="new")
    if transition.effect == "reopened":
        return triage.but(action="reopen", new_status=transition.status)
    return triage.but(new_status=transition.status)
