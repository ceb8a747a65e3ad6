"""Send one outbox row: claim, render, compose, send, mark.

The claim is a conditional UPDATE (queued -> sending): a second run for the
same row, or a second worker, finds nothing to claim and sends nothing. A
row already sent is never sent again. The window that remains: a worker
killed after the relay took the mail but before the row is marked sent
leaves it "sending"; after worker.stale_sending_seconds the sweep queues it
again and it goes out a second time, with the same Message-ID (at least
once, never silently lost).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine

from maildesk import db
from maildesk.config import Settings
from maildesk.deliver.compose import OutgoingMail, compose, compose_bytes
from maildesk.deliver.groupcommit import GroupCommit
from maildesk.deliver.mailcontext import SQL as _SQL
from maildesk.deliver.mailcontext import MailBuilder
from maildesk.deliver.render import Renderer
from maildesk.deliver.transport import PermanentFailure, Relay, TemporaryFailure
from maildesk.models import Customer, Outbox, utcnow
from maildesk.secret import load_secret

log = logging.getLogger(__name__)

class Sender:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.secret = load_secret(settings)
        override = Path(settings.notify.templates_dir) if settings.notify.templates_dir else None
        # dates in mails in the calendar's zone, as in `check` and the pages
        self.renderer = Renderer(override, settings.mail.default_language,
                                 timezone=settings.calendar.timezone)
        self.mails = MailBuilder(settings, engine, self.secret, self.renderer)
        self.relay = Relay(settings.relay)
        # SQLite has one writer: worker threads queue here instead of in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms.
        self._write_lock = (threading.Lock() if engine.dialect.name == "sqlite"
                            else contextlib.nullcontext())
        # ... and the durable commits of several threads are shared
        # (PostgreSQL groups concurrent commits' WAL flushes itself)
        self._group = (GroupCommit(engine, self._write_lock)
                       if engine.dialect.name == "sqlite" else None)

    def __call__(self, outbox_id: int) -> None:
        self.send(outbox_id)

    def claim(self, outbox_id: int, connection: Any = None) -> dict[str, Any] | None:
        """queued -> sending, or None when the row is not queued. The claim's
        commit need not be durable (db.begin_not_durable: lost in a power
        failure, the row is sent again, as one left "sending" is); the
        commit that marks the row sent is, and makes the claim durable too."""
        with self._write_lock, db.begin_not_durable(self.engine, connection) as connection:
            row = connection.execute(
                _SQL["claim"], {"outbox_id": outbox_id, "now": utcnow()}).first()
        return None if row is None else dict(row._mapping)

    def send(self, outbox_id: int) -> str:
        """Returns the row's state afterwards ("skipped" if not claimable)."""
        # one connection for the claim, the reads and marking the row sent
        # (one pool checkout, and one pre-ping on PostgreSQL, per mail); no
        # transaction is open on it while the relay is talked to
        with self.engine.connect() as connection:
            return self._send(outbox_id, connection)

    def _send(self, outbox_id: int, connection: Any) -> str:
        row = self.claim(outbox_id, connection)
        if row is None:
            return "skipped"
        try:
            message, recipients, number = self.build_for_relay(row, connection)
            envelope_from = self.settings.mail.addresses[0]
            delivery = self.relay.send(message, envelope_from, recipients)
        except TemporaryFailure as exc:
            return self._temporary(row, str(exc))
        except PermanentFailure as exc:
            return self._finish(row, "failed", str(exc), connection=connection)
        except Exception as exc:  # a bug or bad data: retried, then visible as failed
            log.exception("outbox %s: could not build or send", outbox_id)
            return self._temporary(row, f"{type(exc).__name__}: {exc}")
        if delivery.refused:
            self._mark_bouncing(delivery.refused)
        if not delivery.accepted:
            return self._finish(row, "failed", "every recipient refused: " + "; ".join(
                f"{r}: {code} {text}" for r, (code, text) in delivery.refused.items()),
                connection=connection)
        note = ("refused: " + ", ".join(delivery.refused)) if delivery.refused else None
        log.info("outbox %s: %s sent to %s", outbox_id, row["kind"],
                 ", ".join(delivery.accepted),
                 extra={"ticket": number, "message_id": row["message_id"]})
        return self._finish(row, "sent", note, number=number, accepted=delivery.accepted,
                            connection=connection)

    def _temporary(self, row: dict[str, Any], error: str) -> str:
        if row["attempts"] >= self.settings.worker.max_attempts:
            log.error("outbox %s: giving up after %d attempts: %s", row["id"], row["attempts"],
                      error)
            return self._finish(row, "failed", f"after {row['attempts']} attempts: {error}")
        delay = self.settings.worker.backoff_seconds * 2 ** (row["attempts"] - 1)
        table = Outbox.__table__
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(table).where(table.c.id == row["id"], table.c.state == "sending")
                .values(state="queued", last_error=error,
                        next_attempt_at=utcnow() + timedelta(seconds=delay))
            )
        log.warning("outbox %s: attempt %d failed (%s); next in %.0f s", row["id"],
                    row["attempts"], error, delay)
        return "queued"

    def _finish(self, row: dict[str, Any], state: str, error: str | None, *,
                number: int | None = None, accepted: tuple[str, ...] = (),
                connection: Any = None) -> str:
        def write(connection: Any) -> None:
            connection.execute(_SQL["finish"], {
                "outbox_id": row["id"], "state": state, "error": error,
                "sent_at": utcnow() if state == "sent" else None})
            if state == "sent" and row["ticket_id"] is not None:  # announcements: no history
                connection.execute(_SQL["event"], {
                    "ticket_id": row["ticket_id"], "at": utcnow(), "actor": "maildesk",
                    "field": "mail_sent", "old": None,
                    "new": f"{row['kind']} to {', '.join(accepted)} ({row['message_id']})",
                })

        if self._group is not None:  # SQLite: one fsync for the threads finishing now
            self._group.run(write, connection)
        elif connection is not None:
            with self._write_lock, connection.begin():
                write(connection)
        else:
            with self._write_lock, self.engine.begin() as own:
                write(own)
        return state

    def _mark_bouncing(self, refused: dict[str, tuple[int, str]]) -> None:
        """The relay refused these recipients: bouncing since now, for the
        reason it gave (notify.bounce_expiry_days counts from it)."""
        table = Customer.__table__
        now = utcnow()
        with self._write_lock, self.engine.begin() as connection:
            for address, (code, text) in refused.items():
                connection.execute(update(table).where(table.c.email == address).values(
                    bouncing=True, bounced_at=now, bounce_reason=f"{code} {text}"[:1000]))

    # -- building the mail -------------------------------------------------

    def build(self, row: dict[str, Any]) -> tuple[Any, list[str], int]:
        """The mail as an EmailMessage, its recipients and the ticket number."""
        fields, recipients, number = self.mails.fields(row)
        return compose(OutgoingMail(**fields)), recipients, number

    def build_for_relay(self, row: dict[str, Any],
                        connection: Any = None) -> tuple[bytes | Any, list[str], int]:
        """What the relay is given: the mail's bytes, written directly
        (compose_bytes, the same bytes as build()'s message flattened); an
        EmailMessage when an envelope address is not ASCII (smtplib then
        sends it with SMTPUTF8 and UTF-8 headers)."""
        fields, recipients, number = self.mails.fields(row, connection)
        envelope = [self.settings.mail.addresses[0], *recipients]
        if all(address.isascii() for address in envelope):
            return compose_bytes(OutgoingMail(**fields)), recipients, number
        return compose(OutgoingMail(**fields)), recipients, number
