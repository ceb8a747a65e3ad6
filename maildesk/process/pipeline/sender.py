"""Who wrote the mail, and which organisation they belong to."""

from __future__ import annotations

from maildesk.types import Address, Context, Lookup, ParsedMail, Triage


def require_sender(mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context) -> Triage:
    """Pick the requester: From, else Sender, Reply-To, the envelope sender.

    A mail nobody can be answered at is rejected (raw kept, reason recorded)
    rather than turned into a ticket that can never be replied to.
    """
    candidates: list[Address] = []
    if mail.from_:
        candidates.append(mail.from_)
    if mail.sender:
        candidates.append(mail.sender)
    candidates.extend(mail.reply_to)
    for raw in (ctx.envelope_from, mail.return_path):
        if raw and "@" in raw:
            candidates.append(Address(raw.strip("<> ").lower()))
    for candidate in candidates:
        if "@" in candidate.email:
            return triage.but(requester=candidate)
    return triage.but(
        action="reject",
        reason="no sender address: From, Sender, Reply-To and Return-Path are missing or invalid",
    )


def identify_organisation(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """Organisation by mail domain; free-mail domains never form one (SPEC §8)."""
    if triage.requester is None:
        return triage
    domain = triage.requester.domain
    if not domain or domain in ctx.free_mail_domains:
        return triage.but(organisation_domain=None)
    return triage.but(organisation_domain=domain)
