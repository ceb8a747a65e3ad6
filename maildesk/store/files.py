"""Reads of stored files: an attachment's row and where its bytes are, and
an inbound message's raw mail. Each function takes a session; the bytes of
an attachment are read from the blob store by the caller."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from maildesk.models import Attachment, InboundMail, InboundRaw, Message, Ticket


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment and the ticket it belongs to (for the log and access)."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    ticket_number: int
    direction: str  # of its message: in / out / internal


@dataclass(frozen=True)
class RawMail:
    """The bytes an inbound message was accepted with."""

    message_id: int
    ticket_number: int
    data: bytes


def attachment(session: Session, attachment_id: int) -> StoredAttachment | None:
    a, m, t = Attachment.__table__.c, Message.__table__.c, Ticket.__table__.c
    row = session.connection().execute(
        select(a.id, a.filename, a.content_type, a.size, a.sha256, t.number, m.direction)
        .join_from(Attachment.__table__, Message.__table__, a.message_id == m.id)
        .join(Ticket.__table__, m.ticket_id == t.id)
        .where(a.id == attachment_id)).first()
    return StoredAttachment(*row) if row is not None else None


def raw_mail(session: Session, message_id: int) -> RawMail | None:
    """None for an unknown message and for one that came by no mail (an
    agent's reply, a phone ticket): those have no raw bytes."""
    m, t, r = Message.__table__.c, Ticket.__table__.c, InboundRaw.__table__.c
    i = InboundMail.__table__.c
    row = session.connection().execute(
        select(m.id, t.number, r.data)
        .join_from(Message.__table__, Ticket.__table__, m.ticket_id == t.id)
        .join(InboundMail.__table__, m.inbound_id == i.id)
        .join(InboundRaw.__table__, r.inbound_id == i.id)
        .where(m.id == message_id)).first()
    return RawMail(row[0], row[1], bytes(row[2])) if row is not None else None
