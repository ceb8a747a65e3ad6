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
from sqlmodel import Session

from maildesk import faults
from maildesk.accept.spool import Accepted, Incoming, accept
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.mail.parse import looks_like_mail, parse_mail
from maildesk.models import Event, InboundMail, utcnow
from maildesk.process import pipeline
from maildesk.process.apply import APPLY, Applying, Outcome
from maildesk.process.pipeline.context import make_context
from maildesk.secret import load_secret
from maildesk.store import inbound as inbound_store
from maildesk.store import tickets as store
from maildesk.store.lookup import StoreLookup
from maildesk.tickets import writes as tickets
from maildesk.types import ParsedMail

log = logging.getLogger(__name__)

#: What recovering a held mail may make of it.
RECOVERED = frozenset({"created", "appended", "reopened", "followup"})
#: Inbound states a redelivery processes again.
RETRY_STATES = ("pending", "failed")
#: A pending row this old was abandoned (its process died before processing
#: it); younger ones belong to a delivery still at work.
STALE_PENDING = timedelta(minutes=5)


class _NotRecoverable(Exception):
    """Even with its filters aside the mail makes no ticket (no sender)."""


@dataclass(frozen=True)
class Prepared:
    """A mail read and parsed before its transaction begins."""

    raw: bytes
    mail: ParsedMail | None
    error: Exception | None = None


class MailProcessor:
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
                raw = inbound_store.raw_bytes(session, inbound_id)
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
        inbound = inbound_store.claim_inbound(session, inbound_id, states)
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
        inbound_store.finish_inbound(
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
            inbound_store.finish_inbound(session, inbound_id, state="pending", error=error,
                                 attempts=attempts,
                                 next_attempt_at=utcnow() + timedelta(seconds=delay))
            return Outcome("failed", reason=error, inbound_id=inbound_id, temporary=True)
        log.exception("processing inbound mail %s failed (kept as failed: "
                      "`maildesk replay %s` after a fix)", inbound_id, inbound_id, extra=extra)
        inbound_store.finish_inbound(session, inbound_id, state="failed", outcome=None, error=error,
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
            held = inbound_store.claim_held(session, inbound_id, actor)
            if held is None:
                return Outcome("failed", None, "not held (no such held mail, or already "
                               "recovered, deleted or purged)", inbound_id, skipped=True)
            inbound = inbound_store.inbound_fields(session, inbound_id)
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
            inbound_store.finish_inbound(session, inbound_id, state="done", outcome=outcome.action,
                                 reason=f"recovered by {actor} (held: {held['reason']})",
                                 error=None, ticket_number=outcome.ticket,
                                 processed_at=utcnow())
            inbound_store.resolve_held(session, inbound_id, result)
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
        triage = pipeline.run(mail, StoreLookup(session), ctx)
        message_id = mail.message_id or inbound["message_id"]
        apply = APPLY[triage.action]
        # Imported mail is history: it makes tickets but tells nobody.
        quiet = inbound["source"] == "import"
        outcome = apply(Applying(self.settings, self.secret), session, mail, triage,
                        inbound_id, message_id, quiet=quiet)
        sender = triage.requester.email if triage.requester else None
        return replace(outcome, sender=sender)

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
