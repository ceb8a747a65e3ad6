"""Mails that must never be answered and never change a ticket (SPEC §5):
loops, blocked senders, runaway senders, auto-replies, bounces, receipts.

Steps flag; `settle_automatic` decides once the ticket is known: an
automatic mail on a ticket becomes an internal note, anything else of it is
ignored. The raw mail is always kept.
"""

from __future__ import annotations

from maildesk.mail import automatic, tokens
from maildesk.types import Context, Lookup, ParsedMail, Triage


def drop_own_mail(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """Our own address as sender, or one of our signed Message-IDs on an
    incoming mail: maildesk's own mail came back, a loop in the making.
    (Every mail maildesk sends has a signed id, so no lookup is needed.)"""
    if triage.requester and ctx.is_ours(triage.requester.email):
        return triage.but(action="ignore", reason="loop",
                          detail=f"sent from maildesk's own address {triage.requester.email}")
    if mail.message_id and tokens.ticket_of_message_id(ctx.secret, mail.message_id) is not None:
        return triage.but(action="ignore", reason="loop",
                          detail=f"maildesk's own mail {mail.message_id} came back")
    return triage


def refuse_blocked(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    if triage.requester is None:
        return triage
    email = triage.requester.email
    if email in ctx.blocked_senders or f"@{triage.requester.domain}" in ctx.blocked_senders:
        return triage.but(action="ignore", reason="blocked",
                          detail=f"{email} is in loops.blocked_senders")
    return triage


def limit_rate(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """More than N mails in the window from one sender: a runaway loop (two
    autoresponders talking through us) or a flood; keep, do nothing."""
    if triage.requester is None or ctx.now is None:
        return triage
    email = triage.requester.email
    if email in ctx.agents:
        return triage
    recent = lookup.mails_from_since(email, ctx.now - ctx.rate_limit_window)
    if recent >= ctx.rate_limit_count:
        minutes = int(ctx.rate_limit_window.total_seconds() // 60)
        return triage.but(
            action="ignore", reason="rate_limited",
            detail=f"{email} sent {recent} mails in the last {minutes} minutes "
                   f"(limit {ctx.rate_limit_count})",
        )
    return triage


def flag_automatic(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """Bounce, read receipt or auto-reply: flagged here, settled later."""
    for kind, reason in (
        ("bounce", automatic.bounce_reason(mail)),
        ("receipt", automatic.receipt_reason(mail)),
        ("auto_reply", automatic.auto_reply_reason(mail)),
    ):
        if reason:
            bounced = mail.report.failed if kind == "bounce" and mail.report else ()
            return triage.but(classification=kind, detail=reason, bounced=bounced)
    return triage


def find_ticket_of_bounce(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """A DSN names the Message-ID of the mail that bounced: if that was ours,
    the bounce belongs to its ticket and its failed recipients are bouncing.
    A DSN about a mail we never sent marks nobody."""
    if triage.classification != "bounce" or mail.report is None:
        return triage
    original = mail.report.original_message_id
    number = tokens.ticket_of_message_id(ctx.secret, original) if original else None
    if number is None and original and lookup.is_our_outgoing(original):
        number = lookup.ticket_for_message_ids((original,))
    if number is None:
        return triage.but(bounced=())
    return triage.but(action="append", ticket=number, thread_via="bounce")


def settle_automatic(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """An automatic mail never opens, reopens or answers anything."""
    if triage.classification is None:
        return triage
    if triage.ticket is not None:
        return triage.but(action="note", reason=triage.classification)
    return triage.but(action="ignore", reason=triage.classification)
