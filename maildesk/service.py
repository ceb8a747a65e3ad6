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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk import blobs, pipeline, store
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.ingest.spool import Accepted, Incoming, accept
from maildesk.models import Attachment, Event, InboundMail, Message, Ticket, utcnow
from maildesk.parse import looks_like_mail, parse_mail
from maildesk.pipeline.context import make_context
from maildesk.pipeline.types import ParsedMail, Triage

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "maildesk"
NO_SUBJECT = "(no subject)"
MAX_TICKET_SUBJECT = 500

#: Inbound states a redelivery processes again.
RETRY_STATES = ("pending", "failed")
#: A pending row this old was abandoned (its process died before processing
#: it); younger ones belong to a delivery still at work.
STALE_PENDING = timedelta(minutes=5)
#: Pipeline actions -> the words `maildesk ingest` reports.
REPORTED = {"create": "created", "append": "appended", "ignore": "ignored", "reject": "rejected"}


@dataclass(frozen=True)
class Outcome:
    """What became of one mail, as `maildesk ingest` reports it."""

    action: str  # created / appended / duplicate / ignored / rejected / failed
    ticket: int | None = None
    reason: str | None = None
    inbound_id: int | None = None
    not_a_mail: bool = False
    skipped: bool = False  # processed by another delivery, not by this call

    def as_dict(self) -> dict[str, object]:
        return {"action": self.action, "ticket": self.ticket, "reason": self.reason}


class Ingestor:
    """Accept and process mails for one configured maildesk."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

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
        with session_scope(self.engine) as session:
            for inbound_id in inbound_ids:
                results[inbound_id] = self._process_one(session, inbound_id, states)
        return results

    def _process_one(self, session: Session, inbound_id: int, states: tuple[str, ...]) -> Outcome:
        inbound = store.claim_inbound(session, inbound_id, states)
        if inbound is None:
            # Another delivery of the same mail processed it meanwhile (its
            # claim made ours wait until it committed): report what it did.
            row = session.get(InboundMail, inbound_id)
            action = (row.outcome or row.state) if row else "failed"
            return Outcome(action, row.ticket_number if row else None,
                           row.reason if row else "no such inbound mail", inbound_id,
                           skipped=True)
        try:
            with session.begin_nested():
                outcome = self._apply(session, inbound_id, inbound)
        except Exception as exc:
            log.exception("processing inbound mail %s failed", inbound_id,
                          extra={"inbound_id": inbound_id, "message_id": inbound["message_id"]})
            error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            store.finish_inbound(session, inbound_id, state="failed", outcome=None, error=error,
                                 processed_at=utcnow())
            return Outcome("failed", reason=error, inbound_id=inbound_id)
        store.finish_inbound(
            session, inbound_id, state="done", outcome=outcome.action, reason=outcome.reason,
            error=None, ticket_number=outcome.ticket, processed_at=utcnow(),
        )
        log.info("inbound mail %s: %s", inbound_id, outcome.action,
                 extra={"inbound_id": inbound_id, "ticket": outcome.ticket,
                        "message_id": inbound["message_id"]})
        return outcome

    def _apply(self, session: Session, inbound_id: int, inbound: dict[str, Any]) -> Outcome:
        raw = store.raw_bytes(session, inbound_id)
        if not looks_like_mail(raw):
            reason = "empty input" if not raw.strip() else "not a mail: no RFC 5322 header block"
            return Outcome("rejected", None, reason, inbound_id, not_a_mail=True)
        if len(raw) > self.settings.limits.max_message_bytes:
            reason = (f"message of {len(raw)} bytes exceeds limits.max_message_bytes "
                      f"({self.settings.limits.max_message_bytes})")
            return Outcome("rejected", None, reason, inbound_id)
        mail = parse_mail(raw)
        recipients = tuple(filter(None, inbound["envelope_to"].split(",")))
        ctx = make_context(self.settings, recipients, inbound["envelope_from"])
        triage = pipeline.run(mail, store.StoreLookup(session), ctx)
        if triage.action in ("ignore", "reject"):
            return Outcome(REPORTED[triage.action], None, triage.reason, inbound_id)
        message_id = mail.message_id or inbound["message_id"]
        if triage.action == "append" and triage.ticket is not None:
            ticket = store.ticket_by_number(session, triage.ticket)
            if ticket is not None and ticket.id is not None:
                self._add_message(session, ticket.id, mail, triage, inbound_id, message_id)
                store.touch_ticket(session, ticket.id)
                return Outcome("appended", ticket.number, triage.reason, inbound_id)
        number = self._create(session, mail, triage, inbound_id, message_id)
        return Outcome("created", number, triage.reason, inbound_id)

    def _create(self, session: Session, mail: ParsedMail, triage: Triage, inbound_id: int,
                message_id: str) -> int:
        assert triage.requester is not None
        organisation_id = None
        if triage.organisation_domain:
            organisation_id = store.organisation_id_for(session, triage.organisation_domain)
        customer = store.customer_for(
            session, triage.requester.email, triage.requester.name,
            self.settings.mail.default_language, organisation_id,
        )
        group = store.group_by_name(session, triage.route.group) if triage.route.group else None
        now = utcnow()
        number = store.next_ticket_number(session, self.settings.mail.first_ticket_number)
        ticket_id = store.insert_returning_id(session, Ticket, {
            "number": number,
            "subject": ticket_subject(mail.subject),
            "status": "new",
            "request_type": triage.route.request_type,
            "priority": triage.priority,
            "priority_explicit": triage.route.priority is not None,
            "channel": "email",
            "requester_id": customer.id,
            "organisation_id": customer.organisation_id,
            "group_id": group.id if group else None,
            "category": triage.route.category,
            "subcategory": triage.route.subcategory,
            "language": customer.language,
            "created_at": now,
            "updated_at": now,
        })
        events = [event(ticket_id, triage.requester.email, "created",
                        f"status new, type {triage.route.request_type}, "
                        f"priority {triage.priority}, channel email")]
        if triage.route.group and group is None:
            events.append(event(ticket_id, SYSTEM_ACTOR, "note",
                                f"route names group {triage.route.group!r}, which does not exist"))
        store.insert_many(session, Event, events)
        self._add_message(session, ticket_id, mail, triage, inbound_id, message_id, new=True)
        return number

    def _add_message(self, session: Session, ticket_id: int, mail: ParsedMail, triage: Triage,
                     inbound_id: int, message_id: str, new: bool = False) -> None:
        """The mail as a message of the ticket, with attachments, participants
        and the events that tell an agent what happened."""
        actor = triage.requester.email if triage.requester else SYSTEM_ACTOR
        db_message_id = store.insert_returning_id(session, Message, {
            "ticket_id": ticket_id,
            "inbound_id": inbound_id,
            "direction": "in",
            "from_addr": triage.requester.email if triage.requester else "",
            "from_name": triage.requester.name if triage.requester else "",
            "to_addrs": ", ".join(a.email for a in mail.to),
            "cc_addrs": ", ".join(a.email for a in mail.cc),
            "subject": mail.subject,
            "date": mail.date,
            "message_id": message_id,
            "in_reply_to": " ".join(mail.in_reply_to),
            "references": " ".join(mail.references),
            "text": mail.text,
            "html": mail.html,
            "created_at": utcnow(),
        })
        events = [] if new else [event(ticket_id, actor, "message", f"mail {message_id}")]
        events += self._store_attachments(session, ticket_id, db_message_id, inbound_id, mail)
        for person in triage.participants:
            if store.add_participant(session, ticket_id, person.email, person.name):
                events.append(event(ticket_id, actor, "participant", person.email))
        events += [event(ticket_id, SYSTEM_ACTOR, "note", f"parser: {n}") for n in triage.notes]
        store.insert_many(session, Event, events)

    def _store_attachments(self, session: Session, ticket_id: int, message_id: int,
                           inbound_id: int, mail: ParsedMail) -> list[dict[str, Any]]:
        """Files first (fsync'ed), rows after: a row never names a missing file.
        Returns the events for attachments refused by the size limit."""
        limit = self.settings.limits.max_attachment_bytes
        rows, refused = [], []
        for part in mail.attachments:
            if part.size > limit:
                refused.append(event(
                    ticket_id, SYSTEM_ACTOR, "attachment_refused",
                    f"{part.filename} ({part.size} bytes) exceeds limits.max_attachment_bytes "
                    f"({limit}); it stays in the raw mail (inbound {inbound_id})",
                ))
                continue
            rows.append({
                "message_id": message_id, "filename": part.filename,
                "content_type": part.content_type[:255], "size": part.size,
                "sha256": blobs.put_blob(self.settings.attachments_dir, part.payload),
                "content_id": part.content_id[:998], "inline": part.inline,
            })
        store.insert_many(session, Attachment, rows)
        return refused


def _worth_retrying(accepted: Accepted, now: datetime) -> bool:
    """A redelivery processes a failed mail, or a pending one left behind."""
    if accepted.state == "failed":
        return True
    return accepted.state == "pending" and (
        accepted.received_at is None or now - accepted.received_at > STALE_PENDING
    )


def event(ticket_id: int, actor: str, field: str, new: str | None,
          old: str | None = None) -> dict[str, Any]:
    """One history row (inserted in bulk with the others of the same mail)."""
    return {"ticket_id": ticket_id, "at": utcnow(), "actor": actor, "field": field,
            "old": old, "new": new}


def ticket_subject(subject: str) -> str:
    """A one-line, bounded subject; the full one stays on the message."""
    subject = " ".join(subject.split())
    if not subject:
        return NO_SUBJECT
    if len(subject) > MAX_TICKET_SUBJECT:
        return subject[: MAX_TICKET_SUBJECT - 1] + "…"
    return subject


