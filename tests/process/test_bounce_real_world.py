"""Issue 19 end to end: a real-world (non-RFC 3464) bounce of our own
acknowledgement marks the customer bouncing, opens no ticket and sends
nothing, even when it carries an auto-reply's header; a 4.x.x delay
warning about the same mail marks nobody."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from maildesk.models import Customer, Outbox
from tests.conftest import Desk
from tests.mailfactory import make_mail

BOUNCES = Path(__file__).parents[1] / "mails" / "bounces"
ERIKA = "erika@kunde.de"


def acknowledged(desk: Desk) -> str:
    """Erika opens ticket 10001; the Message-ID of her acknowledgement."""
    code, out = desk.ingest(make_mail(subject="Heizung kalt", sender=f"Erika <{ERIKA}>"))
    assert code == 0 and out["action"] == "created"
    with desk.engine().connect() as conn:
        return str(conn.execute(select(Outbox.__table__.c.message_id).where(
            Outbox.__table__.c.kind == "acknowledgement")).scalar_one())


def state(desk: Desk) -> tuple[bool, int, int]:
    """(Erika bouncing, tickets, outbox rows)."""
    with desk.engine().connect() as conn:
        bouncing = conn.execute(select(Customer.__table__.c.bouncing).where(
            Customer.__table__.c.email == ERIKA)).scalar_one()
        rows = len(conn.execute(select(Outbox.__table__.c.id)).all())
    return bool(bouncing), len(desk.list()), rows


def test_an_exim_text_bounce_of_our_acknowledgement_marks_the_customer(desk: Desk) -> None:
    ack = acknowledged(desk)
    before = state(desk)
    raw = (BOUNCES / "sisimai-lhost-exim-37.eml").read_bytes()
    raw = raw.replace(b"kijitora@example.net", ERIKA.encode())
    head, copy = raw.split(b"This is a copy of the message", 1)  # the returned copy only:
    raw = head + b"This is a copy of the message" + copy.replace(  # the bounce keeps its own id
        b"neko222-nyaaan-22@neko.example.com", ack.strip("<>").encode())
    raw = b"Auto-Submitted: auto-replied\n" + raw  # looks like an auto-reply too
    code, out = desk.ingest(raw)
    assert code == 0 and out["reason"] == "bounce", out
    assert state(desk) == (True, before[1], before[2])  # marked, no ticket, nothing sent


def test_a_delay_warning_marks_nobody(desk: Desk) -> None:
    ack = acknowledged(desk)
    before = state(desk)
    raw = (BOUNCES / "constructed-delay-german.eml").read_bytes()
    raw = raw.replace(b"slow@kunde.de", ERIKA.encode())
    raw = raw.replace(b"ticket-1001.ack@maildesk.example", ack.strip("<>").encode())
    code, out = desk.ingest(raw)
    assert code == 0 and out["reason"] == "bounce", out
    assert state(desk) == (False, before[1], before[2])
