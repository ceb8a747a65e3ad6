"""The data dir's filesystem runs full (SQLite database inside it) while
`maildesk serve` takes mail, then space is freed again.

What the senders must see: a temporary refusal (451/452: their MTA keeps
the mail and retries), never a 250 for a mail that was not stored, never a
bounce. What the support team must see: a daemon that stayed up, a database
without half-written rows (every inbound mail with all its bytes, no ticket
without its message), and once space is back, every mail, the refused ones
retried by their senders too, exactly once as a ticket.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from maildesk import db
from maildesk.models import InboundMail, InboundRaw, Message, Ticket
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink
from tests.reliability.services import Mta, fill, make_desk, small_filesystem

#: Large enough for the schema, a few mails and SQLite's WAL; small enough
#: to fill in a moment.
SIZE = "16m"
#: Mails of ~64 KB: each needs new pages in the WAL, so none fits into a full disk.
BODY = ("Die Heizung im zweiten Stock bleibt kalt. " * 1600) + "\n"


def mail(name: str) -> tuple[str, bytes, str]:
    sender = f"{name}@firma-{name}.de"
    message_id = f"disk-{name}@firma-{name}.de"
    return sender, make_mail(subject=f"Anfrage {name}", sender=sender, body=BODY,
                             message_id=f"<{message_id}>"), message_id


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(InboundMail.__table__.c.state)).scalars().all())


def assert_nothing_half_written(engine: Engine) -> None:
    """Every inbound row has all its bytes; every ticket has its message;
    every processed mail is on its ticket."""
    inbound, raw = InboundMail.__table__, InboundRaw.__table__
    ticket, message = Ticket.__table__, Message.__table__
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        incomplete = conn.execute(
            select(inbound.c.id).outerjoin(raw, raw.c.inbound_id == inbound.c.id)
            .where((raw.c.inbound_id.is_(None)) | (func.length(raw.c.data) != inbound.c.size))
        ).scalars().all()
        assert not incomplete, f"inbound rows without (all of) their bytes: {incomplete}"
        empty = conn.execute(
            select(ticket.c.number).outerjoin(message, message.c.ticket_id == ticket.c.id)
            .where(message.c.id.is_(None))).scalars().all()
        assert not empty, f"tickets without a message: {empty}"
        lost = conn.execute(
            select(inbound.c.id).outerjoin(message, message.c.inbound_id == inbound.c.id)
            .where(inbound.c.state == "done", message.c.id.is_(None))).scalars().all()
        assert not lost, f"inbound rows marked done without their message: {lost}"


def test_disk_full_refuses_temporarily_and_keeps_the_database_whole(sink: Sink,
                                                                    tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "data", SIZE) as data:
        desk = make_desk(tmp_path, data, f"sqlite:///{data / 'maildesk.sqlite3'}",
                         MAILDESK_RELAY__HOST="127.0.0.1", MAILDESK_RELAY__PORT=str(sink.port))
        engine = db.make_engine(desk.settings.database_url)
        serve = start_serve(desk.env, tmp_path)
        mta = Mta(serve.port)
        try:
            before = [mail(f"vorher{n}") for n in range(3)]
            for sender, raw, message_id in before:
                mta.deliver(sender, raw, message_id, within=20)
            wait_until(lambda: states(engine) == {"done": 3}, timeout=30)

            filler = fill(data)
            refused: list[tuple[str, bytes, str]] = []
            taken: list[str] = []
            streak = 0
            for n in range(40):  # until three refusals in a row
                sender, raw, message_id = item = mail(f"voll{n}")
                code = mta.try_once(sender, raw, message_id)
                if code == 250:
                    taken.append(message_id)
                    streak = 0
                else:
                    refused.append(item)
                    streak += 1
                if streak == 3:
                    break
            assert streak == 3, f"the full disk still took mails: {len(taken)} got 250"
            codes = Counter(code for _, code in mta.tempfails)
            assert set(codes) <= {451, 452}, codes
            assert serve.process.poll() is None, "serve died:\n" + serve.output()
            assert_nothing_half_written(engine)
            with engine.connect() as conn:
                stored = set(conn.execute(select(InboundMail.__table__.c.message_id))
                             .scalars().all())
            assert not stored & {m for _, _, m in refused}, "a refused mail was stored"
            assert set(taken) <= stored, "a mail got 250 but is not stored"

            filler.unlink()
            for sender, raw, message_id in refused:  # the senders' MTAs retry
                mta.deliver(sender, raw, message_id, within=30)
            after = [mail(f"danach{n}") for n in range(3)]
            for sender, raw, message_id in after:
                mta.deliver(sender, raw, message_id, within=30)
            expected = sorted(m for _, _, m in before + refused + after) + taken
            wait_until(lambda: states(engine) == {"done": len(expected)}, timeout=30)
            assert serve.process.poll() is None, "serve died:\n" + serve.output()
            assert_nothing_half_written(engine)
            with engine.connect() as conn:
                messages = conn.execute(select(Message.__table__.c.message_id).where(
                    Message.__table__.c.direction == "in")).scalars().all()
                tickets = conn.execute(select(func.count()).select_from(Ticket.__table__)
                                       ).scalar()
        finally:
            engine.dispose()
            code = serve.stop()
    assert code == 0, serve.output()
    assert sorted(messages) == sorted(expected), Counter(messages).most_common(3)
    assert tickets == len(expected)
