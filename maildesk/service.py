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
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk import blobs, pipeline, store
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.ingest.spool import Incoming, accept
from maildesk.models import Attachment, InboundMail, Message, Ticket
from maildesk.parse import looks_like_mail, parse_mail
from maildesk.pipeline.context import make_context
from maildesk.pipeline.types import ParsedMail, Triage

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "maildesk"
NO_SUBJECT = "(no subject)"
MAX_TICKET_SUBJECT = 500

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
        # A redelivery of a mail that was stored but never processed (crash,
        # database gone mid-way) is the moment to process it.
        processed = self.process([a.inbound_id for a in accepted if a.state == "pending"])
        outcomes: list[Outcome] = []
        for a in accepted:
            outcome = processed.get(a.inbound_id)
            if a.duplicate and (outcome is None or outcome.action == "skipped"):
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

    def _process_one(
        self, session: Session, inbound_id: int, states: tuple[str, ...] = ("pending",)
    ) -> Outcome:
        if not store.claim_inbound(session, inbound_id, states):
            # Someone else processed it meanwhile, or it is not in `states`.
            return Outcome("skipped", None, "not pending", inbound_id)
        inbound = session.get(InboundMail, inbound_id)
        assert inbound is not None
        try:
            with session.begin_nested():
                outcome = self._apply(session, inbound)
        except Exception as exc:
            log.exception("processing inbound mail %s failed", inbound_id)
            inbound.state = "failed"
            inbound.outcome = None
            inbound.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            inbound.processed_at = datetime.now(UTC)
            session.add(inbound)
            session.flush()
            return Outcome("failed", reason=inbound.error, inbound_id=inbound_id)
        inbound.state = "done"
        inbound.outcome = outcome.action
        inbound.reason = outcome.reason
        inbound.error = None
        inbound.ticket_number = outcome.ticket
        inbound.processed_at = datetime.now(UTC)
        session.add(inbound)
        session.flush()
        return outcome

    def _apply(self, session: Session, inbound: InboundMail) -> Outcome:
        raw = store.raw_bytes(session, inbound.id or 0)
        if not looks_like_mail(raw):
            reason = "empty input" if not raw.strip() else "not a mail: no RFC 5322 header block"
            return Outcome("rejected", None, reason, inbound.id, not_a_mail=True)
        if len(raw) > self.settings.limits.max_message_bytes:
            reason = (f"message of {len(raw)} bytes exceeds limits.max_message_bytes "
                      f"({self.settings.limits.max_message_bytes})")
            return Outcome("rejected", None, reason, inbound.id)
        mail = parse_mail(raw)
        recipients = tuple(filter(None, inbound.envelope_to.split(",")))
        ctx = make_context(self.settings, recipients, inbound.envelope_from)
        triage = pipeline.run(mail, store.StoreLookup(session), ctx)
        if triage.action in ("ignore", "reject"):
            return Outcome(REPORTED[triage.action], None, triage.reason, inbound.id)
        if triage.action == "append" and triage.ticket is not None:
            ticket = store.ticket_by_number(session, triage.ticket)
            if ticket is not None:
                self._append(session, ticket, mail, triage, inbound)
                return Outcome("appended", ticket.number, triage.reason, inbound.id)
        ticket = self._create(session, mail, triage, inbound)
        return Outcome("created", ticket.number, triage.reason, inbound.id)

    def _create(
        self, session: Session, mail: ParsedMail, triage: Triage, inbound: InboundMail
    ) -> Ticket:
        assert triage.requester is not None
        organisation_id = None
        if triage.organisation_domain:
            organisation_id = store.get_or_create_organisation(
                session, triage.organisation_domain
            ).id
        customer = store.get_or_create_customer(
            session, triage.requester.email, triage.requester.name,
            self.settings.mail.default_language, organisation_id,
        )
        group = store.group_by_name(session, triage.route.group) if triage.route.group else None
        ticket = Ticket(
            number=store.next_ticket_number(session, self.settings.mail.first_ticket_number),
            subject=ticket_subject(mail.subject),
            status="new",
            request_type=triage.route.request_type,
            priority=triage.priority,
            priority_explicit=triage.route.priority is not None,
            channel="email",
            requester_id=customer.id,
            organisation_id=customer.organisation_id,
            group_id=group.id if group else None,
            category=triage.route.category,
            subcategory=triage.route.subcategory,
            language=customer.language,
        )
        session.add(ticket)
        session.flush()
        store.add_event(session, ticket, triage.requester.email, "created", None,
                        f"status new, type {ticket.request_type}, priority {ticket.priority}, "
                        f"channel email")
        if triage.route.group and group is None:
            store.add_event(session, ticket, SYSTEM_ACTOR, "note", None,
                            f"route names group {triage.route.group!r}, which does not exist")
        self._append(session, ticket, mail, triage, inbound, new=True)
        return ticket

    def _append(
        self, session: Session, ticket: Ticket, mail: ParsedMail, triage: Triage,
        inbound: InboundMail, new: bool = False,
    ) -> None:
        sender = triage.requester
        message = Message(
            ticket_id=ticket.id or 0,
            inbound_id=inbound.id,
            direction="in",
            from_addr=sender.email if sender else "",
            from_name=sender.name if sender else "",
            to_addrs=", ".join(a.email for a in mail.to),
            cc_addrs=", ".join(a.email for a in mail.cc),
            subject=mail.subject,
            date=mail.date,
            message_id=mail.message_id or inbound.message_id,
            in_reply_to=" ".join(mail.in_reply_to),
            references=" ".join(mail.references),
            text=mail.text,
            html=mail.html,
        )
        session.add(message)
        session.flush()
        self._store_attachments(session, ticket, message, mail)
        added = store.add_participants(
            session, ticket, ((p.email, p.name) for p in triage.participants)
        )
        for email in added:
            store.add_event(session, ticket, sender.email if sender else SYSTEM_ACTOR,
                            "participant", None, email)
        if not new:
            store.add_event(session, ticket, sender.email if sender else SYSTEM_ACTOR,
                            "message", None, f"mail {message.message_id or message.id}")
        for note in triage.notes:
            store.add_event(session, ticket, SYSTEM_ACTOR, "note", None, f"parser: {note}")
        ticket.updated_at = datetime.now(UTC)
        session.add(ticket)
        session.flush()

    def _store_attachments(
        self, session: Session, ticket: Ticket, message: Message, mail: ParsedMail
    ) -> None:
        limit = self.settings.limits.max_attachment_bytes
        for part in mail.attachments:
            if part.size > limit:
                store.add_event(
                    session, ticket, SYSTEM_ACTOR, "attachment_refused", None,
                    f"{part.filename} ({part.size} bytes) exceeds limits.max_attachment_bytes "
                    f"({limit}); it stays in the raw mail (inbound {message.inbound_id})",
                )
                continue
            digest = blobs.put_blob(self.settings.attachments_dir, part.payload)
            session.add(Attachment(
                message_id=message.id or 0, filename=part.filename,
                content_type=part.content_type[:255], size=part.size, sha256=digest,
                content_id=part.content_id[:998], inline=part.inline,
            ))
        session.flush()


def ticket_subject(subject: str) -> str:
    """A one-line, bounded subject; the full one stays on the message."""
    subject = " ".join(subject.split())
    if not subject:
        return NO_SUBJECT
    if len(subject) > MAX_TICKET_SUBJECT:
        return subject[: MAX_TICKET_SUBJECT - 1] + "…"
    return subject


