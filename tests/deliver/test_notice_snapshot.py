"""A notice rendered late describes the ticket as it was when the notice was
caused (issue #15): the outbox row carries a snapshot (tickets/snapshot.py)
and the worker prefers it; rows written before the snapshot existed render
from the current ticket as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select, update

from maildesk.deliver.sender import Sender
from maildesk.models import Outbox
from maildesk.tickets import snapshot
from tests.conftest import Desk
from tests.schedule.test_sweep import pending_ticket, sweep
from tests.web.test_pages import new_ticket, reply

# -- the pure rule ---------------------------------------------------------------------------

TICKET = {"id": 1, "number": 10001, "status": "closed", "priority": "high", "subject": "neu",
          "assignee_id": 7, "requester_id": 3}


def test_the_snapshot_is_laid_over_the_current_row() -> None:
    payload = snapshot.with_snapshot({"days_left": 5}, {**TICKET, "status": "pending",
                                                        "priority": "low", "subject": "alt"})
    assert payload["days_left"] == 5
    seen = snapshot.as_of(TICKET, payload)
    assert (seen["status"], seen["priority"], seen["subject"]) == ("pending", "low", "alt")
    assert seen["number"] == 10001 and seen["requester_id"] == 3  # identities stay current


def test_a_row_without_a_snapshot_renders_the_current_ticket() -> None:
    assert snapshot.as_of(TICKET, {"days_left": 5}) == TICKET
    assert snapshot.as_of(TICKET, {snapshot.KEY: "garbage"}) == TICKET


def test_a_snapshot_cannot_override_identities() -> None:
    forged = {snapshot.KEY: {"number": 1, "requester_id": 99, "status": "open"}}
    seen = snapshot.as_of(TICKET, forged)
    assert (seen["number"], seen["requester_id"], seen["status"]) == (10001, 3, "open")


# -- through the worker ----------------------------------------------------------------------


def outbox_rows(desk: Desk, kind: str) -> list[dict]:
    with desk.engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(Outbox.__table__).where(Outbox.__table__.c.kind == kind))]


def render(desk: Desk, row: dict) -> str:
    message, _, _ = Sender(desk.settings, desk.engine()).build(row)
    return message.get_body(("plain",)).get_content()


def test_a_reminder_sent_after_the_close_still_says_pending(desk: Desk) -> None:
    number = pending_ticket(desk, "Zählerstand")
    sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    (row,) = outbox_rows(desk, "reminder_1")
    # the relay was down; meanwhile the agent closed the ticket
    assert desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    text = " ".join(render(desk, row).split())
    assert "Status „Wartet auf Ihre Antwort“" in text, text
    assert "Geschlossen" not in text


def test_an_agent_reply_rendered_after_solving_keeps_its_solve_link(desk: Desk) -> None:
    number = new_ticket(desk)
    reply(desk, number)
    (row,) = outbox_rows(desk, "agent_reply")
    assert desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    assert "/solve/" in render(desk, row)  # the link it had; the page says "already closed"


def test_an_old_row_without_snapshot_renders_as_today(desk: Desk) -> None:
    number = pending_ticket(desk, "Zählerstand")
    sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    (row,) = outbox_rows(desk, "reminder_1")
    old = {k: v for k, v in json.loads(row["payload"]).items() if k != snapshot.KEY}
    with desk.engine().begin() as conn:
        conn.execute(update(Outbox.__table__).where(Outbox.__table__.c.id == row["id"])
                     .values(payload=json.dumps(old)))
    assert desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    (row,) = outbox_rows(desk, "reminder_1")
    assert "Status „Geschlossen“" in " ".join(render(desk, row).split())
