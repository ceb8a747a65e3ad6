"""A mail whose processing fails is kept, reported, and processed again on
its next delivery: never lost, never half written."""

from __future__ import annotations

import json
import smtplib

import pytest
from sqlmodel import Session, select

from maildesk import service, tickets
from maildesk.models import InboundMail, Message, Ticket
from tests.conftest import Desk
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail


def test_processing_failure_rolls_back_keeps_mail_and_retries(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_mail(subject="trifft einen Fehler")
    original = tickets.add_mail_message

    def explode(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)  # rows written, then the failure: all must roll back
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tickets, "add_mail_message", explode)
    code, out = desk.ingest(raw)
    assert code == 75  # the MTA keeps the mail queued and retries
    assert out["action"] == "failed" and "disk on fire" in out["reason"]
    with Session(desk.engine()) as session:
        assert session.exec(select(Ticket)).all() == []
        assert session.exec(select(Message)).all() == []
        (row,) = session.exec(select(InboundMail)).all()
        assert row.state == "failed" and "disk on fire" in (row.error or "")
    failed = json.loads(desk.cli("inbound", "list", "--state", "failed", "--json").stdout)
    assert [f["id"] for f in failed] == [row.id]

    monkeypatch.setattr(tickets, "add_mail_message", original)
    code, out = desk.ingest(raw)  # the MTA's retry
    assert (code, out["action"], out["ticket"]) == (0, "created", 10001)
    assert desk.ingest(raw)[1]["action"] == "duplicate"
    assert len(desk.list()) == 1


def test_one_failing_mail_in_an_import_batch_spares_the_others(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import mailbox

    box = mailbox.mbox(tmp_path / "m.mbox")
    for i in range(5):
        box.add(make_mail(subject=f"Mail {i}", message_id=f"<batch-{i}@x.de>"))
    box.flush()
    original = service.parse_mail

    def picky(raw: bytes):
        if b"Mail 2" in raw:
            raise ValueError("cannot digest mail 2")
        return original(raw)

    monkeypatch.setattr(service, "parse_mail", picky)
    result = desk.cli("import", str(tmp_path / "m.mbox"), "--json")
    assert json.loads(result.stdout)["outcomes"] == {"created": 4, "failed": 1}
    monkeypatch.setattr(service, "parse_mail", original)
    again = desk.cli("import", str(tmp_path / "m.mbox"), "--json")
    assert json.loads(again.stdout)["outcomes"] == {"created": 1, "duplicate": 4}


def test_mail_stored_but_never_processed_is_processed_on_redelivery(desk: Desk) -> None:
    """A crash between the accept commit and processing (kill -9) leaves a
    pending row; the MTA saw no exit 0 and delivers again."""
    from datetime import timedelta

    from sqlalchemy import update

    from maildesk.ingest.spool import Incoming, accept
    from maildesk.models import utcnow

    raw = make_mail(subject="abgestürzt")
    engine = desk.engine()
    (accepted,) = accept(engine, [Incoming(raw, "pipe")])
    # Redelivered at once: the first delivery may still be at work.
    assert desk.ingest(raw)[1]["action"] == "duplicate"
    assert desk.list() == []
    with engine.begin() as conn:
        an_hour_ago = utcnow() - timedelta(hours=1)
        conn.execute(update(InboundMail.__table__).values(received_at=an_hour_ago))
    code, out = desk.ingest(raw)
    assert (code, out["action"], out["ticket"]) == (0, "created", 10001)
    assert inbound_state(desk, accepted.inbound_id) == "done"


def inbound_state(desk: Desk, inbound_id: int) -> str:
    with Session(desk.engine()) as session:
        row = session.get(InboundMail, inbound_id)
        return row.state if row else "missing"


def test_serve_processes_a_failed_mail_again_when_it_is_delivered_again(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """The README's promise for every channel: a failed mail is processed
    again on its next delivery (here: first by pipe, again over SMTP)."""
    raw = make_mail(subject="erst kaputt, dann gut", message_id="<again@kunde.de>")
    original = tickets.add_mail_message

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(tickets, "add_mail_message", explode)
    assert desk.ingest(raw)[1]["action"] == "failed"
    monkeypatch.setattr(tickets, "add_mail_message", original)
    serve = start_serve(desk.env, tmp_path)
    try:
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
            client.sendmail("erika@kunde.de", ["support@example.com"], raw)
        wait_until(lambda: desk.list(), 20)
    finally:
        assert serve.stop() == 0, serve.output()
    assert [t["subject"] for t in desk.list()] == ["erst kaputt, dann gut"]
    failed = json.loads(desk.cli("inbound", "list", "--state", "failed", "--json").stdout)
    assert failed == []
