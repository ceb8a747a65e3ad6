"""The Process stage: one accepted inbound row becomes ticket rows.

parse -> pipeline of pure steps -> apply, inside one transaction per mail
(a savepoint when several mails share a commit). A failure rolls that mail
back and marks its inbound row failed with the error, so nothing is half
written and the mail can be replayed.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from maildesk import faults, outbox, pipeline, store, tickets, tokens
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.ingest.spool import Accepted, Incoming, accept
from maildesk.language import mail_language
from maildesk.models import Agent, Event, InboundMail, utcnow
from maildesk.parse import looks_like_mail, parse_mail
from maildesk.pipeline.context import make_context
from maildesk.pipeline.types import Address, ParsedMail, Route, Triage
from maildesk.secret import load_secret

log = logging.getLogger(__name__)

#: What recovering a held mail may make of it.
RECOVERED = frozenset({"created", "appended", "reopened", "followup"})
#: Inbound states a redelivery processes again.
RETRY_STATES = ("pending", "failed")
#: A pending row this old was abandoned (its process died before processing
#: it); younger ones belong to a delivery still at work.
STALE_PENDING = timedelta(minutes=5)


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


class _NotRecoverable(Exception):
    """Even with its filters aside the mail makes no ticket (no sender)."""


@dataclass(frozen=True)
class Prepared:
    """A mail read and parsed before its transaction begins."""

    raw: bytes
    mail: ParsedMail | None
    error: Exception | None = None


class Ingestor:
    """Accept and process mails for one configured maildesk."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.secret = load_secret(settings)

    def ingest(self, incoming: Incoming) -> Outcome:
        """Accept then process one mail (the pipe transport's path)."""
        return self.ingest_batch([incoming])[0]

    def ingest_batch(self, items: Sequence[Incoming]) -> list[Outcome]:
        """Accept all (one commit), then process all (one commit).

        Each mail counts only after both commits, so a batch is exactly as
        durable as single mails, at two fsyncs per batch instead of per mail.
        """
        accepted = accept(self.engine, list(items))
        # A redelivery of a mail that was stored but not processed (a crash,
        # the database gone mid-way, a failure the MTA was told to retry) is
        # the moment to process it again.
        now = utcnow()
        todo = [a.inbound_id for a in accepted if not a.duplicate or _worth_retrying(a, now)]
        processed = self.process(todo, RETRY_STATES)
        outcomes: list[Outcome] = []
        for a in accepted:
            outcome = processed.get(a.inbound_id)
            if a.duplicate and (outcome is None or outcome.skipped):
                outcome = Outcome("duplicate", a.ticket_number,
                                  "already received (same Message-ID or content)", a.inbound_id)
            outcomes.append(outcome or Outcome("failed", None, "not processed", a.inbound_id))
        return outcomes

    def process(
        self, inbound_ids: Sequence[int], states: tuple[str, ...] = ("pending",)
    ) -> dict[int, Outcome]:
        """Process inbound rows in `states`, each in its own savepoint.

        The row is claimed with a conditional UPDATE first, so two processes
        handed the same id never both make a ticket of it.
        """
        results: dict[int, Outcome] = {}
        if not inbound_ids:
            return results
        # Read and parse first, outside the writing transaction: parsing is
        # the slow part, and SQLite's write lock (taken by the claim) must
        # not wait on it while listeners want to commit accepted mail.
        prepared = {inbound_id: self._prepare(inbound_id) for inbound_id in inbound_ids}
        if self.engine.dialect.name != "sqlite":
            # One transaction per mail: its row locks (organisation, customer,
            # ticket, in that order for every mail) are held for one mail
            # only, so two instances never hold locks the other one waits
            # for across mails of a batch: the cycle that deadlocked them.
            for inbound_id in inbound_ids:
                with session_scope(self.engine) as session:
                    results[inbound_id] = self._process_one(
                        session, inbound_id, states, prepared[inbound_id])
            return results
        # SQLite has one writer anyway: one commit (one fsync) for the batch.
        with session_scope(self.engine) as session:
            for inbound_id in inbound_ids:
                results[inbound_id] = self._process_one(
                    session, inbound_id, states, prepared[inbound_id]
                )
        return results

    def _prepare(self, inbound_id: int) -> Prepared:
        """The raw mail and its parse (never raises: a failure is kept and
        reported by processing)."""
        try:
            with Session(self.engine) as session:
                raw = store.raw_bytes(session, inbound_id)
        except Exception as exc:  # noqa: BLE001 — processing reports it
            return Prepared(b"", None, exc)
        if not looks_like_mail(raw) or len(raw) > self.settings.limits.max_message_bytes:
            return Prepared(raw, None)
        try:
            return Prepared(raw, parse_mail(raw))
        except Exception as exc:  # noqa: BLE001 — parse_mail promises not to; if it does
            return Prepared(raw, None, exc)

    def _process_one(self, session: Session, inbound_id: int, states: tuple[str, ...],
                     prepared: Prepared) -> Outcome:
        inbound = store.claim_inbound(session, inbound_id, states)
        if inbound is None:
            # Another delivery of the same mail processed it (report what it
            # did), or is processing it right now (PostgreSQL: its claim is
            # not committed yet): the mail is stored, and that delivery, or
            # the drainer should it die, makes its ticket.
            row = session.get(InboundMail, inbound_id)
            if row is None:
                return Outcome("failed", None, "no such inbound mail", inbound_id, skipped=True)
            if row.state == "pending":
                return Outcome("pending", None, "being processed by another delivery",
                               inbound_id, skipped=True)
            return Outcome(row.outcome or row.state, row.ticket_number, row.reason, inbound_id,
                           skipped=True)
        try:
            with session.begin_nested():
                outcome = self._apply(session, inbound_id, inbound, prepared)
        except Exception as exc:  # noqa: BLE001 — kept pending or failed, with the error
            return self._failed(session, inbound_id, inbound, exc)
        reason = f"{outcome.reason}: {outcome.detail}" if outcome.detail else outcome.reason
        store.finish_inbound(
            session, inbound_id, state="done", outcome=outcome.action, reason=reason,
            error=None, ticket_number=outcome.ticket, processed_at=utcnow(), sender=outcome.sender,
        )
        log.info("inbound mail %s: %s", inbound_id, outcome.action,
                 extra={"inbound_id": inbound_id, "ticket": outcome.ticket,
                        "message_id": inbound["message_id"]})
        return outcome

    def _failed(self, session: Session, inbound_id: int, inbound: dict[str, Any],
                exc: Exception) -> Outcome:
        """The mail's savepoint was rolled back. A temporary fault (faults.py)
        leaves it pending, tried again after a growing delay (the drainer,
        or the sender's redelivery); anything else parks it as failed."""
        error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        extra = {"inbound_id": inbound_id, "message_id": inbound["message_id"]}
        if faults.is_temporary(exc):
            attempts = int(inbound.get("attempts") or 0) + 1
            delay = faults.retry_delay(attempts, self.settings.serve.retry_seconds,
                                       self.settings.serve.retry_max_seconds)
            log.warning("inbound mail %s: temporary fault (attempt %d), kept pending and "
                        "tried again in %.0f s: %s", inbound_id, attempts, delay,
                        error.splitlines()[0][:300], extra=extra)
            store.finish_inbound(session, inbound_id, state="pending", error=error,
                                 attempts=attempts,
                                 next_attempt_at=utcnow() + timedelta(seconds=delay))
            return Outcome("failed", reason=error, inbound_id=inbound_id, temporary=True)
        log.exception("processing inbound mail %s failed (kept as failed: "
                      "`maildesk replay %s` after a fix)", inbound_id, inbound_id, extra=extra)
        store.finish_inbound(session, inbound_id, state="failed", outcome=None, error=error,
                             processed_at=utcnow())
        return Outcome("failed", reason=error, inbound_id=inbound_id)

    def recover(self, inbound_id: int, actor: str) -> Outcome:
        """A person recovers a held mail: it is processed as if it had been
        accepted (the filters that held it stand aside; threading, the
        lifecycle and the notifications do not), in one transaction with
        the held entry's resolution. A second recover of the same mail (at
        once, from elsewhere) finds nothing to claim."""
        prepared = self._prepare(inbound_id)
        with session_scope(self.engine) as session:
            held = store.claim_held(session, inbound_id, actor)
            if held is None:
                return Outcome("failed", None, "not held (no such held mail, or already "
                               "recovered, deleted or purged)", inbound_id, skipped=True)
            inbound = store.inbound_fields(session, inbound_id)
            try:
                with session.begin_nested():
                    outcome = self._apply(session, inbound_id, inbound, prepared,
                                          recovered_by=actor)
                    if outcome.ticket is None or outcome.action not in RECOVERED:
                        raise _NotRecoverable(outcome.detail or outcome.reason or outcome.action)
            except _NotRecoverable as exc:
                session.rollback()
                return Outcome("failed", None, f"cannot be recovered: {exc}", inbound_id)
            result = f"{outcome.action} #{outcome.ticket}"
            store.finish_inbound(session, inbound_id, state="done", outcome=outcome.action,
                                 reason=f"recovered by {actor} (held: {held['reason']})",
                                 error=None, ticket_number=outcome.ticket,
                                 processed_at=utcnow())
            store.resolve_held(session, inbound_id, result)
            ticket = store.ticket_row(session, outcome.ticket)
            assert ticket is not None
            store.insert_many(session, Event, [tickets.event(
                ticket["id"], actor, "note",
                f"recovered from held mail {inbound_id} ({held['reason']})")])
        log.info("held mail %s recovered by %s: %s", inbound_id, actor, result,
                 extra={"inbound_id": inbound_id, "ticket": outcome.ticket})
        return outcome

    def _apply(self, session: Session, inbound_id: int, inbound: dict[str, Any],
               prepared: Prepared, recovered_by: str | None = None) -> Outcome:
        if prepared.error is not None:
            raise prepared.error
        raw = prepared.raw
        if not looks_like_mail(raw):
            reason = "empty input" if not raw.strip() else "not a mail: no RFC 5322 header block"
            return Outcome("rejected", None, reason, inbound_id, not_a_mail=True)
        if len(raw) > self.settings.limits.max_message_bytes:
            reason = (f"message of {len(raw)} bytes exceeds limits.max_message_bytes "
                      f"({self.settings.limits.max_message_bytes})")
            return Outcome("rejected", None, reason, inbound_id)
        mail = prepared.mail if prepared.mail is not None else parse_mail(raw)
        ctx = make_context(
            self.settings, self.secret,
            recipients=tuple(filter(None, inbound["envelope_to"].split(","))),
            envelope_from=inbound["envelope_from"],
            # An import replays old mail at once: no rate limit for it.
            now=None if inbound["source"] == "import" else utcnow(),
            recovered_by=recovered_by,
        )
        triage = pipeline.run(mail, store.StoreLookup(session), ctx)
        message_id = mail.message_id or inbound["message_id"]
        apply = getattr(self, f"_apply_{triage.action}")
        # Imported mail is history: it makes tickets but tells nobody.
        quiet = inbound["source"] == "import"
        outcome: Outcome = apply(session, mail, triage, inbound_id, message_id, quiet=quiet)
        sender = triage.requester.email if triage.requester else None
        return replace(outcome, sender=sender)

    def _apply_reject(self, session: Session, mail: ParsedMail, triage: Triage,
                      inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        return Outcome("rejected", None, triage.detail or triage.reason, inbound_id)

    def _apply_ignore(self, session: Session, mail: ParsedMail, triage: Triage,
                      inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        if triage.bounced:
            store.mark_bouncing(session, triage.bounced)
        self._hold(session, mail, triage, inbound_id, None)
        return Outcome("ignored", None, triage.reason, inbound_id, detail=triage.detail)

    def _apply_note(self, session: Session, mail: ParsedMail, triage: Triage,
                    inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        """An automatic mail on a ticket: kept as an internal note, nothing
        reopens, nothing is sent. A bounce marks its failed recipients."""
        assert triage.ticket is not None
        ticket = store.ticket_row(session, triage.ticket)
        assert ticket is not None
        events = tickets.add_mail_message(
            session, self.settings, ticket["id"], mail, inbound_id=inbound_id,
            message_id=message_id, author=triage.requester, internal=True,
        )
        events.append(tickets.event(ticket["id"], tickets.SYSTEM_ACTOR, "note",
                                    f"{triage.reason}: {triage.detail} (kept, not answered)"))
        if triage.bounced and store.mark_bouncing(session, triage.bounced):
            events.append(tickets.event(ticket["id"], tickets.SYSTEM_ACTOR, "bouncing",
                                        ", ".join(triage.bounced)))
        store.insert_many(session, Event, events)
        self._hold(session, mail, triage, inbound_id, triage.ticket)
        return Outcome("ignored", triage.ticket, triage.reason, inbound_id, detail=triage.detail)

    def _apply_hold(self, session: Session, mail: ParsedMail, triage: Triage,
                    inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        """Held for a person (pipeline/authenticity.py): nothing relayed,
        nothing applied, nobody answered. A mail in an agent's name on a
        ticket is also kept there as an internal note marked unverified,
        and the agent (at the configured address, not the mail's) is told."""
        ids: list[int] = []
        ticket = store.ticket_row(session, triage.ticket) if triage.ticket else None
        if ticket is not None and triage.reason == "unverified_agent":
            assert triage.requester is not None
            events = tickets.add_mail_message(
                session, self.settings, ticket["id"], mail, inbound_id=inbound_id,
                message_id=message_id, author=triage.requester, internal=True,
                authenticity=triage.authenticity)
            events.append(tickets.event(ticket["id"], tickets.SYSTEM_ACTOR, "note",
                                        f"held, not applied: {triage.detail} "
                                        f"(`maildesk held recover {inbound_id}`)"))
            store.insert_many(session, Event, events)
            ids = outbox.notify_agent(
                session, self.settings, self.secret, ticket["number"], triage.requester.email,
                {"held_id": inbound_id, "held_subject": mail.subject,
                 "held_reason": triage.detail or triage.reason},
                kind="agent_notice_unverified")
        self._hold(session, mail, triage, inbound_id, ticket["number"] if ticket else None)
        return Outcome("held", ticket["number"] if ticket else None, triage.reason, inbound_id,
                       detail=triage.detail, outbox_ids=tuple(ids))

    @staticmethod
    def _hold(session: Session, mail: ParsedMail, triage: Triage, inbound_id: int,
              ticket_number: int | None) -> None:
        store.hold_mail(session, inbound_id, reason=triage.reason or "held",
                        detail=triage.detail or "", subject=mail.subject,
                        sender=triage.requester.email if triage.requester else "",
                        ticket_number=ticket_number)

    def _apply_append(self, session: Session, mail: ParsedMail, triage: Triage,
                      inbound_id: int, message_id: str, reported: str = "appended",
                      effect: str | None = None, quiet: bool = False) -> Outcome:
        assert triage.ticket is not None and triage.requester is not None
        ticket = store.ticket_row(session, triage.ticket)
        assert ticket is not None
        if triage.sender_role == "agent":
            return self._apply_agent_mail(session, mail, triage, ticket, inbound_id, message_id)
        actor = triage.requester.email
        events = tickets.add_mail_message(
            session, self.settings, ticket["id"], mail, inbound_id=inbound_id,
            message_id=message_id, author=triage.requester, authenticity=triage.authenticity,
        )
        events.append(tickets.event(ticket["id"], actor, "message",
                                    f"mail {message_id} (threaded by {triage.thread_via})"))
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
            notices = outbox.notify(session, self.settings, self.secret, triage.ticket, event)
        return Outcome(reported, triage.ticket, None, inbound_id, outbox_ids=tuple(notices))

    def _apply_agent_mail(self, session: Session, mail: ParsedMail, triage: Triage,
                          ticket: dict[str, Any], inbound_id: int, message_id: str) -> Outcome:
        """An agent answered a notification by mail (SPEC §1): the text above
        the reply line goes to the customer; `#command` lines at its top are
        applied (all or nothing) and confirmed to the agent; `#internal`
        keeps the text as a note and sends nothing."""
        from maildesk.agent_actions import ActionError
        from maildesk.pipeline.commands import Command, parse_commands
        from maildesk.quoting import display_text

        assert triage.requester is not None
        email = triage.requester.email
        store.sync_directory(session, self.settings)
        agent = session.exec(select(Agent).where(Agent.email == email)).one()
        commands, body = parse_commands(display_text(mail.text))
        problems = [c for c in commands if not c.ok]
        ids: list[int] = []
        replied = False
        if not problems:
            try:
                with session.begin_nested():
                    ids, replied = self._agent_actions(session, ticket, agent, commands, body,
                                                       triage.authenticity)
            except ActionError as exc:
                problems = [Command(f"#{ticket['number']}", "", ok=False, message=str(exc))]
                ids = []
        if not replied:  # kept on the ticket as an internal note: nothing is lost
            events = tickets.add_mail_message(
                session, self.settings, ticket["id"], mail, inbound_id=inbound_id,
                message_id=message_id, author=triage.requester, internal=True,
                authenticity=triage.authenticity)
            store.insert_many(session, Event, events)
        if commands or problems:
            results = [{"line": c.line, "ok": False, "message": c.message} for c in problems]
            results += [{"line": c.line, "ok": not problems,
                         "message": "not applied" if problems else "applied"}
                        for c in commands if c.ok]
            ids += outbox.notify_agent(session, self.settings, self.secret, ticket["number"],
                                       email, {"commands": results})
        return Outcome("appended", ticket["number"],
                       "agent_commands_rejected" if problems else None, inbound_id,
                       outbox_ids=tuple(ids))

    def _agent_actions(self, session: Session, ticket: dict[str, Any], agent: Agent,
                       commands: list[Any], body: str,
                       authenticity: str = "") -> tuple[list[int], bool]:
        """The reply (unless #internal or empty), then the commands. Returns
        (outbox ids, whether a reply to the customer was written)."""
        from maildesk import agent_actions

        ids: list[int] = []
        internal = any(c.name == "internal" for c in commands)
        replied = bool(body) and not internal
        fields: dict[str, str | None] = dict.fromkeys(
            ("status", "priority", "type", "assign", "group"))
        for command in commands:
            if command.name in fields:
                fields[command.name] = command.value
        # A reply with "#status solved" is the solution: it goes out as the
        # solution mail, with the satisfaction survey (seed 001).
        solve = replied and fields["status"] == "solved"
        if replied:
            ids += agent_actions.write_reply(session, self.settings, self.secret, ticket,
                                             agent, body, solve=solve,
                                             authenticity=authenticity).outbox_ids
        if solve:
            fields["status"] = None
        if any(v is not None for v in fields.values()):
            current = store.ticket_row(session, ticket["number"]) or ticket
            _, more = agent_actions.change_fields(
                session, self.settings, current, agent.email, status=fields["status"],
                priority=fields["priority"], request_type=fields["type"],
                assign=fields["assign"], group=fields["group"])
            ids += more
        return ids, replied

    def _apply_reopen(self, session: Session, mail: ParsedMail, triage: Triage,
                      inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        return self._apply_append(session, mail, triage, inbound_id, message_id,
                                  reported="reopened", effect="reopened", quiet=quiet)

    def _apply_followup(self, session: Session, mail: ParsedMail, triage: Triage,
                        inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        """A reply to a closed ticket opens a new one linked to it; the
        closed ticket stays as it is (SPEC §3)."""
        assert triage.ticket is not None and triage.requester is not None
        old = store.ticket_row(session, triage.ticket)
        assert old is not None
        requester = store.customer_address(session, old["requester_id"]) or triage.requester
        route = Route(request_type=old["request_type"], category=old["category"],
                      subcategory=old["subcategory"], group=triage.route.group)
        ticket_id, number, _ = tickets.create_ticket(session, self.settings, tickets.NewTicket(
            subject=tokens.remove_tag(old["subject"], self.settings.mail.subject_tag)
            or old["subject"],
            requester=requester, route=route, priority=old["priority"],
            organisation_domain=triage.organisation_domain, follow_up_of=old["number"],
        ), triage.requester.email)
        copied = store.participants_of_ticket(session, old["id"])
        people = tuple(Address(email, name) for email, name, _ in copied)
        if triage.requester.email != requester.email:
            people += (triage.requester,)
        events = tickets.add_mail_message(
            session, self.settings, ticket_id, mail, inbound_id=inbound_id,
            message_id=message_id, author=triage.requester, authenticity=triage.authenticity,
        )
        events += tickets.add_participants(session, ticket_id, people + triage.participants,
                                           triage.requester.email)
        store.insert_many(session, Event, events + self._note_events(ticket_id, triage))
        notices = [] if quiet else outbox.notify(session, self.settings, self.secret, number,
                                                 "followup_created")
        return Outcome("followup", number, None, inbound_id, followup_of=old["number"],
                       outbox_ids=tuple(notices))

    def _apply_create(self, session: Session, mail: ParsedMail, triage: Triage,
                      inbound_id: int, message_id: str, quiet: bool = False) -> Outcome:
        assert triage.requester is not None
        ticket_id, number, new_customer = tickets.create_ticket(
            session, self.settings, tickets.NewTicket(
                subject=mail.subject, requester=triage.requester, route=triage.route,
                priority=triage.priority, organisation_domain=triage.organisation_domain,
                language=mail_language(mail.headers, self.settings.mail.default_language),
            ), triage.requester.email)
        events = tickets.add_mail_message(
            session, self.settings, ticket_id, mail, inbound_id=inbound_id,
            message_id=message_id, author=triage.requester, authenticity=triage.authenticity,
        )
        events += tickets.add_participants(session, ticket_id, triage.participants,
                                           triage.requester.email)
        store.insert_many(session, Event, events + self._note_events(ticket_id, triage))
        notices = [] if quiet else outbox.notify(session, self.settings, self.secret, number,
                                                 "ticket_created")
        if (new_customer and not quiet and self.settings.registration.confirm
                and self.settings.web.enabled):
            notices += outbox.notify(session, self.settings, self.secret, number,
                                     "registration")
        return Outcome("created", number, None, inbound_id, outbox_ids=tuple(notices))

    @staticmethod
    def _note_events(ticket_id: int, triage: Triage) -> list[dict[str, Any]]:
        notes = [f"parser: {n}" for n in triage.notes]
        if triage.detail:  # e.g. why the subject tag alone was not trusted
            notes.append(triage.detail)
        return [tickets.event(ticket_id, tickets.SYSTEM_ACTOR, "note", n) for n in notes]


def _worth_retrying(accepted: Accepted, now: datetime) -> bool:
    """A redelivery processes a failed mail, a pending one whose processing
    hit a temporary fault (the sender's retry is as good a moment as the
    drainer's), or a pending one left behind."""
    if accepted.state == "failed":
        return True
    return accepted.state == "pending" and (
        accepted.attempts > 0 or accepted.received_at is None
        or now - accepted.received_at > STALE_PENDING
    )
