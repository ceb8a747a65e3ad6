"""The ingest pipeline: a literal, ordered tuple of pure steps.

Each step is `(ParsedMail, Triage, Lookup, Context) -> Triage`. Steps flag;
once one decides to ignore, reject or keep the mail as a note, the rest are
skipped. Only the service acts on the result.
"""

from __future__ import annotations

from collections.abc import Callable

from maildesk.process.pipeline.authenticity import verify_sender
from maildesk.process.pipeline.classify import (
    drop_own_mail,
    find_ticket_of_bounce,
    flag_automatic,
    limit_rate,
    refuse_blocked,
    settle_automatic,
)
from maildesk.process.pipeline.routing import collect_participants, route_by_recipient
from maildesk.process.pipeline.sender import identify_organisation, require_sender
from maildesk.process.pipeline.status import decide_status, identify_role, settle_statement
from maildesk.process.pipeline.threads import (
    find_ticket_by_body,
    find_ticket_by_headers,
    find_ticket_by_subject,
    find_ticket_by_third_party,
    find_ticket_by_token,
)
from maildesk.types import Context, Lookup, ParsedMail, Triage

Step = Callable[[ParsedMail, Triage, Lookup, Context], Triage]

STEPS: tuple[Step, ...] = (
    require_sender,
    drop_own_mail,
    refuse_blocked,
    limit_rate,
    identify_role,
    flag_automatic,
    find_ticket_of_bounce,
    find_ticket_by_third_party,
    find_ticket_by_headers,
    find_ticket_by_token,
    find_ticket_by_body,
    find_ticket_by_subject,
    settle_automatic,
    verify_sender,
    settle_statement,
    decide_status,
    route_by_recipient,
    identify_organisation,
    collect_participants,
)


#: Steps that stand aside when a person recovers a held mail: they are what
#: held it (own mail, blocked, rate limit, automatic mail); threading, the
#: lifecycle and routing still run, so it lands where any mail would.
SKIPPED_ON_RECOVERY: frozenset[Step] = frozenset({
    drop_own_mail, refuse_blocked, limit_rate, flag_automatic, find_ticket_of_bounce,
    settle_automatic,
})


def run(mail: ParsedMail, lookup: Lookup, ctx: Context, steps: tuple[Step, ...] = STEPS) -> Triage:
    triage = Triage(notes=mail.problems)
    recovering = ctx.recovered_by is not None
    for step in steps:
        if recovering and step in SKIPPED_ON_RECOVERY:
            continue
        triage = step(mail, triage, lookup, ctx)
        if triage.final:
            break
    return triage
