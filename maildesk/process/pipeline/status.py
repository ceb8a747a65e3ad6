"""What a mail on an existing ticket does to its status (SPEC §3)."""

from __future__ import annotations

from maildesk.tickets.lifecycle import next_status
from maildesk.types import Context, Lookup, ParsedMail, Triage


def identify_role(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    if triage.requester is not None and triage.requester.email in ctx.agents:
        return triage.but(sender_role="agent")
    return triage


#: Threading by our own signed references: only someone who got one of our
#: mails has them, but not only the ticket's people (a customer forwards
#: our mail; a colleague answers it).
_SIGNED_WAYS = ("token", "our_message_id")


def settle_statement(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """A third person's answer, and any customer-side mail through the
    ticket's signed references from someone who takes no part in it, is
    an internal note for the agents (action "statement"): never public,
    never reopening or following up, never acknowledged. An answer to a
    request from another address than the one asked is kept too, marked
    unverified; so is the stranger's mail."""
    if triage.action != "append" or triage.ticket is None or triage.requester is None:
        return triage
    sender = triage.requester.email
    request = triage.third_party
    if request is not None:
        if sender == request.email.lower():
            return triage.but(action="statement")
        why = (f"unverified: {sender} answered the {request.kind} request sent to "
               f"{request.email}")
        return triage.but(action="statement", authenticity=_with(why, triage.authenticity))
    if (triage.sender_role == "customer" and triage.thread_via in _SIGNED_WAYS
            and not lookup.is_participant(triage.ticket, sender)):
        why = (f"unverified: {sender} takes no part in #{triage.ticket} "
               f"(threaded by {triage.thread_via})")
        return triage.but(action="statement", authenticity=_with(why, triage.authenticity))
    return triage


def _with(why: str, checked: str) -> str:
    return f"{why}; {checked}" if checked else why


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
