"""The Accept stage: the one thing every channel calls.

`accept` stores the raw bytes in a committed row before anything else
happens; only then may a listener say 250, the pipe exit 0 or the poller
flag the IMAP message. Redelivery is caught here by the unique dedup key.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk import faults
from maildesk.db import session_scope
from maildesk.mail.text import printable
from maildesk.store import inbound as inbound_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One mail as a channel hands it over."""

    raw: bytes
    source: str
    envelope_from: str | None = None
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Accepted:
    """The committed inbound row, or the earlier one this mail duplicates."""

    inbound_id: int
    duplicate: bool
    ticket_number: int | None = None
    state: str = "pending"
    received_at: datetime | None = None
    message_id: str = ""
    attempts: int = 0  # temporary faults its processing met so far


def message_id_of(raw: bytes) -> str:
    """The Message-ID from the header block alone (cheap, never raises)."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0),
              default=len(raw))
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: min(end, 262144)])
        value = str(headers.get("Message-ID", "") or "")
    except Exception:  # noqa: BLE001 — garbage headers just mean "no id"
        return ""
    value = " ".join(value.split()).strip().strip("<>").strip()
    return printable(value)[:998]


def dedup_key(raw: bytes, message_id: str) -> tuple[str, str]:
    """(sha256, key): the Message-ID when there is one, else the content."""
    digest = hashlib.sha256(raw).hexdigest()
    return digest, (f"mid:{message_id}" if message_id else f"sha256:{digest}")


#: Attempts of one accept transaction that met a deadlock or a lost
#: connection, before the listeners answer 451.
ACCEPT_ATTEMPTS = 3


def accept(engine: Engine, items: list[Incoming]) -> list[Accepted]:
    """Store every item (one commit for the batch) and report duplicates.

    The insert skips a row whose dedup key exists (ON CONFLICT DO NOTHING),
    so a concurrent delivery of the same mail becomes a duplicate instead of
    an error, without a savepoint per mail. Rows are inserted in the order
    of their dedup keys: two instances that receive the same mails (two MX)
    then take the unique index's locks in the same order, so one waits for
    the other's commit and sees a duplicate, and neither deadlocks (which
    would answer 451 to every mail of both groups). A deadlock or lost
    connection that happens anyway is retried here before anyone is told.
    """
    keyed = [(_keys(item), index, item) for index, item in enumerate(items)]
    keyed.sort(key=lambda entry: entry[0][2])
    for attempt in range(1, ACCEPT_ATTEMPTS + 1):
        try:
            results: dict[int, Accepted] = {}
            with session_scope(engine) as session:
                for keys, index, item in keyed:
                    results[index] = _accept_one(session, item, keys)
            return [results[i] for i in range(len(items))]
        except Exception as exc:
            if (attempt == ACCEPT_ATTEMPTS or not faults.is_temporary(exc)
                    or faults.is_no_space(exc)):
                raise
            log.warning("accept: temporary fault, trying again (%d of %d): %s", attempt,
                        ACCEPT_ATTEMPTS, str(exc).splitlines()[0][:200] if str(exc) else exc)
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _keys(item: Incoming) -> tuple[str, str, str]:
    """(Message-ID, sha256, dedup key) of one mail, read before the transaction."""
    message_id = message_id_of(item.raw)
    digest, key = dedup_key(item.raw, message_id)
    return message_id, digest, key


def _accept_one(session: Session, item: Incoming, keys: tuple[str, str, str]) -> Accepted:
    message_id, digest, key = keys
    inbound_id = inbound_store.insert_inbound(session, {
        "received_at": datetime.now(UTC),
        "source": item.source,
        "envelope_from": printable(item.envelope_from)[:998] if item.envelope_from else None,
        "envelope_to": printable(",".join(item.recipients)),
        "message_id": message_id,
        "sha256": digest,
        "dedup_key": key,
        "size": len(item.raw),
        "state": "pending",
    }, item.raw)
    if inbound_id is not None:
        return Accepted(inbound_id, False, message_id=message_id)
    existing = inbound_store.find_inbound_by_key(session, key)
    if existing is None:  # pragma: no cover - the conflicting row cannot vanish
        raise RuntimeError(f"dedup key {key!r} conflicted but no row has it")
    return Accepted(existing.id or 0, True, existing.ticket_number, existing.state,
                    existing.received_at, message_id, existing.attempts or 0)
