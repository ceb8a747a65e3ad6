"""The apply side of Process: a Triage's action becomes rows, as data.

`APPLY` maps every action a Triage can end with (types.ACTIONS) to the one
function that writes it, inside the caller's transaction: a literal table,
so a reader sees every outcome in one place and a test checks that no
action is missing. Each function returns the `Outcome` `maildesk ingest`
reports and the outbox ids its notifications got (sent after the commit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from maildesk.config import Settings
from maildesk.mail import tokens
from maildesk.mail.language import mail_language
from maildesk.models import Event
from maildesk.process.agent_mail import apply_agent_mail
from maildesk.store import inbound as inbound_store
from maildesk.store import third_party as thirdparty_store
from maildesk.store import tickets as store
from maildesk.tickets import categories, outbox
from maildesk.tickets import writes as tickets
from maildesk.types import Address, ParsedMail, Route, Triage


@dataclass(frozen=True)


class Outcome:
    """What became of one mail, as `maildesk ingest` reports it."""

    #: created / appended / reopened / followup / duplicate / ignored /
    #: rejected / failed
    action: str
    ticket: int | None = None
    reason: str | None = None
    inbound_id: int | None = None
    not_a_mail: bool = False
    skipped: bool = False  # processed by another delivery, not by this call
    followup_of: int | None = None
    detail: str | None = None  # the sentence behind a reason code
    sender: str | None = None  # the requester address (for the rate limit)
    outbox_ids: tuple[int, ...] = ()  # notifications to hand to the broker after commit
    temporary: bool = False  # failed for a temporary fault: still pending, retried

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "action": self.action, "ticket": self.ticket, "reason": self.reason,
        }
        if self.followup_of is not None:
            data["followup_of"] = self.followup_of
        return data


@dataclass(frozen=True)


class Applying:
    """What every apply function needs besides the session and the mail."""

    settings: Settings
    secret: bytes


def apply_reject(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                 inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    return Outcome("rejected", None, triage.detail or triage.reason, inbound_id)


def apply_ignore(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                 inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    if triage.bounced:
        store.mark_bouncing(session, triage.bounced, bounce_reason(mail, triage))
    _hold(session, mail, triage, inbound_id, None)
    return Outcome("ignored", None, triage.reason, inbound_id, detail=triage.detail)


def bounce_reason(mail: ParsedMail, triage: Triage) -> str:
    """What the bounce says went wrong: the DSN's status code and the
    bounce's own words (as the customer's record shows it)."""
    status = mail.report.status if mail.report else ""
    return ": ".join(part for part in (status, triage.detail or "") if part)


def _wrote_again(session: Session, ticket_id: int, triage: Triage) -> list[dict[str, Any]]:
    """A mail from a bouncing customer: their address works, the mark goes."""
    if triage.requester is None or not store.clear_bouncing(session, triage.requester.email):
        return []
    return [tickets.event(ticket_id, tickets.SYSTEM_ACTOR, "bouncing",
                          f"cleared: {triage.requester.email} wrote again")]


def apply_note(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
               inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    """An automatic mail on a ticket: kept as an internal note, nothing
    reopens, nothing is sent. A bounce marks its failed recipients."""
    assert triage.ticket is not None
    ticket = store.ticket_row(session, triage.ticket)
    assert ticket is not None
    events = tickets.add_mail_message(
        session, env.settings, ticket["id"], mail, inbound_id=inbound_id,
        message_id=message_id, author=triage.requester, internal=True,
    )
    events.append(tickets.event(ticket["id"], tickets.SYSTEM_ACTOR, "note",
                                f"{triage.reason}: {triage.detail} (kept, not answered)"))
    reason = bounce_reason(mail, triage)
    if triage.bounced and store.mark_bouncing(session, triage.bounced, reason):
        events.append(tickets.event(ticket["id"], tickets.SYSTEM_ACTOR, "bouncing",
                                    f"{', '.join(triage.bounced)}: {reason}"))
    store.insert_many(session, Event, events)
    _hold(session, mail, triage, inbound_id, triage.ticket)
    return Outcome("ignored", triage.ticket, triage.reason, inbound_id, detail=triage.detail)


def apply_hold(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
               inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    """Held for a person (process/pipeline/authenticity.py): nothing relayed,
    nothing applied, nobody answered. A mail in an agent's name on a
    ticket is also kept there as an internal note marked unverified,
    and the agent (at the configured address, not the mail's) is told."""
    ids: list[int] = []
    ticket = store.ticket_row(session, triage.ticket) if triage.ticket else None
    if ticket is not None and triage.reason == "unverified_agent":
        assert triage.requester is not None
        events = tickets.add_mail_message(
            session, env.settings, ticket["id"], mail, inbound_id=inbound_id,
            message_id=message_id, author=triage.requester, internal=True,
            authenticity=triage.authenticity)
        events.append(tickets.event(ticket["id"], tickets.SYSTEM_ACTOR, "note",
                                    f"held, not applied: {triage.detail} "
                                    f"(`maildesk held recover {inbound_id}`)"))
        store.insert_many(session, Event, events)
        ids = outbox.notify_agent(
            session, env.settings, env.secret, ticket["number"], triage.requester.email,
            {"held_id": inbound_id, "held_subject": mail.subject,
             "held_reason": triage.detail or triage.reason},
            kind="agent_notice_unverified")
    _hold(session, mail, triage, inbound_id, ticket["number"] if ticket else None)
    return Outcome("held", ticket["number"] if ticket else None, triage.reason, inbound_id,
                   detail=triage.detail, outbox_ids=tuple(ids))


def apply_statement(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                    inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    """A third person's answer (or a mail through the ticket's signed
    references from someone who takes no part in it): an internal note by
    its writer, the status untouched, nobody outside answered. The request
    counts as answered only when the address asked answered; the agent who
    asked (else the ticket's agents) is told."""
    assert triage.ticket is not None and triage.requester is not None
    ticket = store.ticket_row(session, triage.ticket)
    assert ticket is not None
    sender, request = triage.requester.email, triage.third_party
    events = tickets.add_mail_message(
        session, env.settings, ticket["id"], mail, inbound_id=inbound_id,
        message_id=message_id, author=triage.requester, internal=True,
        authenticity=triage.authenticity)
    verified = request is not None and not triage.authenticity.startswith("unverified")
    if request is not None:
        what = "statement" if request.kind == "ask" else "answer to the forward"
        line = f"{what} of {sender} (request {request.id}) kept as an internal note"
    else:
        line = (f"mail {message_id} of {sender}, who takes no part in the ticket, kept as an "
                f"internal note (threaded by {triage.thread_via})")
    if not verified:
        line += f"; {triage.authenticity}"
    events.append(tickets.event(ticket["id"], sender, "statement", line))
    store.insert_many(session, Event, events)
    asker = None
    if request is not None:
        asker = thirdparty_store.answered(session, request.id, verified)
    note_id = thirdparty_store.note_of_inbound(session, ticket["id"], inbound_id)
    ids = [] if quiet else outbox.notify_third_party(
        session, env.settings, env.secret, ticket["number"], "statement",
        request_id=request.id if request else 0, asker=asker, message_row_id=note_id,
        payload={"statement_from": sender, "statement_name": triage.requester.name,
                 "statement_kind": request.kind if request else "",
                 "statement_verified": verified,
                 "statement_why": "" if verified else triage.authenticity})
    return Outcome("appended", ticket["number"], "statement", inbound_id,
                   detail=triage.authenticity or None, outbox_ids=tuple(ids))


def _hold(session: Session, mail: ParsedMail, triage: Triage, inbound_id: int,
          ticket_number: int | None) -> None:
    inbound_store.hold_mail(session, inbound_id, reason=triage.reason or "held",
                    detail=triage.detail or "", subject=mail.subject,
                    sender=triage.requester.email if triage.requester else "",
                    ticket_number=ticket_number)


def apply_append(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                 inbound_id: int, message_id: str, reported: str = "appended",
                 effect: str | None = None, quiet: bool = False) -> Outcome:
    assert triage.ticket is not None and triage.requester is not None
    ticket = store.ticket_row(session, triage.ticket)
    assert ticket is not None
    if triage.sender_role == "agent":
        ids, rejected = apply_agent_mail(env, session, mail, triage, ticket, inbound_id,
                                         message_id)
        return Outcome("appended", ticket["number"],
                       "agent_commands_rejected" if rejected else None, inbound_id,
                       outbox_ids=tuple(ids))
    actor = triage.requester.email
    events = tickets.add_mail_message(
        session, env.settings, ticket["id"], mail, inbound_id=inbound_id,
        message_id=message_id, author=triage.requester, authenticity=triage.authenticity,
    )
    events.append(tickets.event(ticket["id"], actor, "message",
                                f"mail {message_id} (threaded by {triage.thread_via})"))
    events += _wrote_again(session, ticket["id"], triage)
    events += tickets.add_participants(session, ticket["id"], triage.participants, actor)
    values, status_events = tickets.status_change(
        ticket, triage.new_status or ticket["status"], actor, effect
    )
    store.update_ticket(session, ticket["id"], **values)
    store.insert_many(session, Event, events + status_events)
    if triage.sender_role == "agent" or quiet:
        notices: list[int] = []
    else:
        event = "reopened" if effect == "reopened" else "customer_reply"
        notices = outbox.notify(session, env.settings, env.secret, triage.ticket, event)
    return Outcome(reported, triage.ticket, None, inbound_id, outbox_ids=tuple(notices))


def apply_reopen(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                 inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    return apply_append(env, session, mail, triage, inbound_id, message_id,
                              reported="reopened", effect="reopened", quiet=quiet)


def apply_followup(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                   inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    """A reply to a closed ticket opens a new one linked to it; the
    closed ticket stays as it is (SPEC §3)."""
    assert triage.ticket is not None and triage.requester is not None
    old = store.ticket_row(session, triage.ticket)
    assert old is not None
    requester = store.customer_address(session, old["requester_id"]) or triage.requester
    route = Route(request_type=old["request_type"], category=old["category"],
                  subcategory=old["subcategory"], group=triage.route.group)
    ticket_id, number, _ = tickets.create_ticket(session, env.settings, tickets.NewTicket(
        subject=tokens.remove_tag(old["subject"], env.settings.mail.subject_tag)
        or old["subject"],
        requester=requester, route=route, priority=old["priority"],
        organisation_domain=triage.organisation_domain, follow_up_of=old["number"],
    ), triage.requester.email)
    copied = store.participants_of_ticket(session, old["id"])
    people = tuple(Address(email, name) for email, name, _ in copied)
    if triage.requester.email != requester.email:
        people += (triage.requester,)
    events = tickets.add_mail_message(
        session, env.settings, ticket_id, mail, inbound_id=inbound_id,
        message_id=message_id, author=triage.requester, authenticity=triage.authenticity,
    )
    events += tickets.add_participants(session, ticket_id, people + triage.participants,
                                       triage.requester.email)
    events += _wrote_again(session, ticket_id, triage)
    store.insert_many(session, Event, events + _note_events(ticket_id, triage))
    notices = [] if quiet else outbox.notify(session, env.settings, env.secret, number,
                                             "followup_created")
    return Outcome("followup", number, None, inbound_id, followup_of=old["number"],
                   outbox_ids=tuple(notices))


def apply_create(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                 inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
    assert triage.requester is not None
    route, by_category = categories.with_group(triage.route, env.settings.categories,
                                               env.settings.categories_assign_group)
    if by_category:  # the category's group must be a row before the ticket names it
        store.sync_directory(session, env.settings)
    ticket_id, number, new_customer = tickets.create_ticket(
        session, env.settings, tickets.NewTicket(
            subject=mail.subject, requester=triage.requester, route=route,
            priority=triage.priority, organisation_domain=triage.organisation_domain,
            language=mail_language(mail.headers, env.settings.mail.default_language),
        ), triage.requester.email)
    events = tickets.add_mail_message(
        session, env.settings, ticket_id, mail, inbound_id=inbound_id,
        message_id=message_id, author=triage.requester, authenticity=triage.authenticity,
    )
    events += tickets.add_participants(session, ticket_id, triage.participants,
                                       triage.requester.email)
    events += _wrote_again(session, ticket_id, triage)
    if by_category:  # the route's category chose the group: the history says so
        events.append(tickets.event(ticket_id, tickets.SYSTEM_ACTOR, "group", route.group))
    store.insert_many(session, Event, events + _note_events(ticket_id, triage))
    notices = [] if quiet else outbox.notify(session, env.settings, env.secret, number,
                                             "ticket_created")
    if (new_customer and not quiet and env.settings.registration.confirm
            and env.settings.web.enabled):
        notices += outbox.notify(session, env.settings, env.secret, number,
                                 "registration")
    return Outcome("created", number, None, inbound_id, outbox_ids=tuple(notices))


def _note_events(ticket_id: int, triage: Triage) -> list[dict[str, Any]]:
    notes = [f"parser: {n}" for n in triage.notes]
    if triage.detail:  # e.g. why the subject tag alone was not trusted
        notes.append(triage.detail)
    return [tickets.event(ticket_id, tickets.SYSTEM_ACTOR, "note", n) for n in notes]


#: One function per Triage action (types.ACTIONS); `reopen` is an append
#: that reports "reopened".
ApplyFn = Callable[..., Outcome]
APPLY: dict[str, ApplyFn] = {
    "create": apply_create,
    "append": apply_append,
    "reopen": apply_reopen,
    "followup": apply_followup,
    "note": apply_note,
    "hold": apply_hold,
    "ignore": apply_ignore,
    "reject": apply_reject,
    "statement": apply_statement,
}
