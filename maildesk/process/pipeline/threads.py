"""Finding the ticket a mail belongs to (SPEC §4), strongest proof first:

0. a third person's answer to our ask/forward mail (its own reply address or
   signed Message-ID; becomes an internal note, pipeline/status.py);
1. In-Reply-To/References naming one of our signed Message-IDs, or a mail
   stored on a ticket;
2. the reply token in a recipient's plus-address;
3. the signed reference in the body (clients that drop headers), trusted
   only when the sender takes part in the ticket;
4. the subject tag, trusted only when the sender takes part in the ticket.

A Message-ID shaped like ours whose signature fails is a forgery and is
never looked up. Each step leaves the triage alone once a ticket is found.
"""

from __future__ import annotations

from maildesk.mail import tokens
from maildesk.types import Context, Lookup, ParsedMail, Triage


def _found(triage: Triage, number: int, via: str) -> Triage:
    return triage.but(action="append", ticket=number, thread_via=via)


def find_ticket_by_third_party(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """An answer to a mail we sent a third person (tickets ask/forward): to
    its signed reply address support+tp-<id>-<sig>@…, or, when a client
    dropped that, with the signed third-party Message-ID in In-Reply-To/
    References. Runs before the other ways of threading: that mail is one
    of the ticket's, and a reply to it must never count as the customer's.
    A tp address with a bad signature threads nothing (the mail goes on as
    one to the support address) and is noted."""
    if triage.ticket is not None:
        return triage
    request_id, forged = None, False
    for address in (*ctx.recipients, *(a.email for a in (*mail.to, *mail.cc))):
        if ctx.is_ours(address) and tokens.looks_like_third_party_address(address):
            request_id = tokens.third_party_of_address(ctx.secret, address)
            forged = forged or request_id is None
            if request_id is not None:
                break
    if request_id is None:
        for message_id in (*mail.in_reply_to, *reversed(mail.references)):
            found = tokens.third_party_of_message_id(ctx.secret, message_id) if message_id else None
            if found is not None:
                request_id = found[1]
                break
    request = lookup.third_party_request(request_id) if request_id is not None else None
    if request is None or lookup.ticket(request.ticket) is None:
        if forged:
            return triage.but(detail="the third-party reply address it was sent to has a bad "
                                     "signature (forged); not threaded by it")
        return triage
    return triage.but(action="append", ticket=request.ticket, thread_via="third_party",
                      third_party=request)


def find_ticket_by_headers(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """In-Reply-To first (the direct parent), then References newest first."""
    if triage.ticket is not None:
        return triage
    ids = tuple(dict.fromkeys((*mail.in_reply_to, *reversed(mail.references))))
    ids = tuple(i for i in ids if i and i != mail.message_id)
    unverified = []
    for message_id in ids:
        number = tokens.ticket_of_message_id(ctx.secret, message_id)
        if number is not None and lookup.ticket(number) is not None:
            return _found(triage, number, "our_message_id")
        if not tokens.looks_like_our_message_id(message_id):
            unverified.append(message_id)
    number = lookup.ticket_for_message_ids(tuple(unverified)) if unverified else None
    return triage if number is None else _found(triage, number, "header")


def find_ticket_by_token(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """support+<token>@…: verified by its signature, without a database read.
    An agent's own reply address counts only for the agent it was made for
    (its signature covers the From address)."""
    if triage.ticket is not None:
        return triage
    sender = triage.requester.email if triage.requester else ""
    for address in (*ctx.recipients, *(a.email for a in (*mail.to, *mail.cc))):
        if not ctx.is_ours(address):
            continue
        number = tokens.ticket_of_address(ctx.secret, address)
        if number is None and sender:
            number = tokens.ticket_of_agent_address(ctx.secret, address, sender)
        if number is not None and lookup.ticket(number) is not None:
            return _found(triage, number, "token")
    return triage


def find_ticket_by_body(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """The signed [ref:…] line of our mails, quoted in the reply.

    It proves that the writer has one of our mails, not that they take part
    in the ticket: a customer forwards our mail to a colleague or a third
    party, who writes to support quoting it. From a stranger it is treated
    like a subject tag from a stranger (a new ticket; nothing of the old one
    reaches them, and the next agent reply does not quote them to the
    customer)."""
    if triage.ticket is not None or triage.requester is None:
        return triage
    sender = triage.requester.email
    for number in tokens.tickets_of_body(ctx.secret, mail.text):
        if lookup.ticket(number) is None:
            continue
        if sender in ctx.agents or lookup.is_participant(number, sender):
            return _found(triage, number, "body")
        return triage.but(detail=f"body references #{number}, but {sender} takes no part in it")
    return triage


def find_ticket_by_subject(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """The subject tag alone is weak proof (anyone can type it): it counts
    only for a sender who already takes part in that ticket. A stranger's
    mail opens a new ticket, and nothing of the old one leaks to them."""
    if triage.ticket is not None or triage.requester is None:
        return triage
    number = tokens.ticket_of_subject(mail.subject, ctx.subject_tag)
    if number is None or lookup.ticket(number) is None:
        return triage
    sender = triage.requester.email
    if sender in ctx.agents or lookup.is_participant(number, sender):
        return _found(triage, number, "subject")
    return triage.but(detail=f"subject names #{number}, but {sender} takes no part in it")
