"""Finding the ticket a mail belongs to.

This first step trusts only In-Reply-To/References naming a mail stored on a
ticket; reply tokens, signed body references and subject tags follow
(SPEC §4).
"""

from __future__ import annotations

from maildesk.pipeline.types import Context, Lookup, ParsedMail, Triage


def find_ticket_by_headers(
    mail: ParsedMail, triage: Triage, lookup: Lookup, ctx: Context
) -> Triage:
    """In-Reply-To first (the direct parent), then References newest first."""
    ids = tuple(dict.fromkeys((*mail.in_reply_to, *reversed(mail.references))))
    ids = tuple(i for i in ids if i and i != mail.message_id)
    number = lookup.ticket_for_message_ids(ids) if ids else None
    if number is None:
        return triage
    return triage.but(action="append", ticket=number)
