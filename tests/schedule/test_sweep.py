"""The time rules through `maildesk sweep --now`: reminders, closing,
idempotence, and two sweeps at once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from maildesk.actions import agent as agent_actions
from maildesk.models import Ticket
from maildesk.schedule.sweep import run_sweep
from maildesk.secret import load_secret
from tests.conftest import Desk, hand_over
from tests.mailfactory import make_mail

# Monday 2 November 2026, 10:00 Berlin: no holidays in the following weeks.
SET_PENDING = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def pending_ticket(desk: Desk, subject: str = "Zählerstand") -> int:
    number = desk.ingest(make_mail(subject=subject))[1]["ticket"]
    agent_actions.set_fields(desk.engine(), desk.settings, number, "agent@example.com",
                             status="pending", dispatch=hand_over(desk.settings))
    with desk.engine().begin() as conn:  # the agent set it pending at SET_PENDING
        conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == number)
                     .values(pending_since=SET_PENDING))
    return number


def sweep(desk: Desk, now: datetime, *extra: str) -> dict:
    result = desk.cli("sweep", "--now", now.isoformat(), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def kinds(desk: Desk) -> list[str]:
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    return sorted(r["kind"] for r in rows)


def test_reminder_1_then_reminder_2_and_close(desk: Desk) -> None:
    number = pending_ticket(desk)
    # 4 business days later: nothing yet
    assert sweep(desk, SET_PENDING + timedelta(days=4))["actions"] == []
    # 6 business days (Tuesday 10 November): reminder 1
    report = sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    assert report["actions"] == [{"ticket": number, "action": "reminder_1"}]
    assert "reminder_1" in kinds(desk)
    assert desk.show(number)["status"] == "pending"
    # the same sweep again does nothing (idempotent)
    assert sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))["actions"] == []
    # 11 business days (Tuesday 17 November): reminder 2 and the close
    report = sweep(desk, datetime(2026, 11, 17, 12, 0, tzinfo=UTC))
    assert report["actions"] == [{"ticket": number, "action": "reminder_2"}]
    ticket = desk.show(number)
    assert ticket["status"] == "closed"
    assert kinds(desk).count("reminder_2") == 1
    fields = [(e["field"], e["old"], e["new"]) for e in ticket["events"]]
    assert ("status", "pending", "closed") in fields
    # a reply afterwards opens a follow-up
    out = desk.ingest(make_mail(subject=f"AW: [#{number}] Zählerstand", body="4711\n"))[1]
    assert (out["action"], out["followup_of"]) == ("followup", number)


def test_customer_reply_resets_the_clock(desk: Desk) -> None:
    number = pending_ticket(desk)
    desk.ingest(make_mail(subject=f"AW: [#{number}] Zählerstand", body="Moment bitte\n"))
    assert desk.show(number)["status"] == "open"
    assert sweep(desk, datetime(2026, 11, 17, 12, 0, tzinfo=UTC))["actions"] == []


def test_solved_ticket_closes_after_14_days(desk: Desk) -> None:
    number = desk.ingest(make_mail(subject="gelöst"))[1]["ticket"]
    agent_actions.set_fields(desk.engine(), desk.settings, number, "agent@example.com",
                             status="solved", dispatch=hand_over(desk.settings))
    def solved_days_ago(days: int) -> None:  # a sweep in the future is refused
        with desk.engine().begin() as conn:
            conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == number)
                         .values(solved_at=datetime.now(UTC) - timedelta(days=days)))

    solved_days_ago(13)
    assert sweep(desk, datetime.now(UTC))["actions"] == []
    solved_days_ago(15)
    report = sweep(desk, datetime.now(UTC))
    assert report["actions"] == [{"ticket": number, "action": "auto_close"}]
    assert desk.show(number)["status"] == "closed"
    out = desk.ingest(make_mail(subject=f"AW: [#{number}] gelöst"))[1]
    assert out["action"] == "followup"


def test_dry_run_changes_nothing(desk: Desk) -> None:
    number = pending_ticket(desk)
    report = sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC), "--dry-run")
    assert report["actions"] == [{"ticket": number, "action": "reminder_1"}]
    assert kinds(desk) == ["acknowledgement", "agent_notice_new", "registration"]
    assert sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))["actions"] != []


def test_two_sweeps_at_once_remind_each_ticket_once(desk: Desk) -> None:
    numbers = [pending_ticket(desk, f"parallel {i}") for i in range(20)]
    now = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    secret = load_secret(desk.settings)
    reports = []
    barrier = threading.Barrier(2)

    def run() -> None:
        engine = desk.engine()
        barrier.wait(timeout=30)
        reports.append(run_sweep(engine, desk.settings, secret, now))
        engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done = sorted(a["ticket"] for r in reports for a in r.actions)
    assert done == sorted(numbers)  # every ticket once, whichever sweep got it
    assert kinds(desk).count("reminder_1") == 20


def test_rule_mails_render_for_the_worker(desk: Desk) -> None:
    """The rows the sweep queues carry what their templates need."""
    from maildesk.deliver.sender import Sender

    pending_ticket(desk, "erinnern")
    solved = desk.ingest(make_mail(subject="schließen"))[1]["ticket"]
    agent_actions.set_fields(desk.engine(), desk.settings, solved, "agent@example.com",
                             status="solved", dispatch=hand_over(desk.settings))
    sweep(desk, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    sweep(desk, datetime(2026, 11, 17, 12, 0, tzinfo=UTC))
    with desk.engine().begin() as conn:  # solved 15 days ago (a future sweep is refused)
        conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == solved)
                     .values(solved_at=datetime.now(UTC) - timedelta(days=15)))
    sweep(desk, datetime.now(UTC))
    sender = Sender(desk.settings, desk.engine())
    rows = [r for r in json.loads(desk.cli("outbox", "list", "--json").stdout)
            if r["kind"] in ("reminder_1", "reminder_2", "auto_close")]
    assert sorted(r["kind"] for r in rows) == ["auto_close", "reminder_1", "reminder_2"]
    for row in rows:
        claimed = sender.claim(row["id"])
        message, recipients, number = sender.build(claimed)
        assert recipients == ["erika@kunde.de"]
        assert f"[#{number}]" in message["Subject"]
        assert message["Auto-Submitted"] in ("auto-replied", "auto-generated")
