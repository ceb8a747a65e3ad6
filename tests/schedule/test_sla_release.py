"""SLA lights and release notices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from maildesk.config import CalendarSettings, SlaSettings
from maildesk.models import Ticket
from maildesk.schedule.calendar import BusinessCalendar
from maildesk.schedule.sla import light
from tests.conftest import Desk
from tests.mailfactory import make_mail

CAL = BusinessCalendar.from_settings(CalendarSettings())
MONDAY_9 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


@pytest.mark.parametrize(("request_type", "hours_later", "answered", "state"), [
    ("user_help", 11, False, "green"),    # 11 of 16 business hours
    ("user_help", 13, False, "yellow"),   # past 75 % of 16
    ("user_help", 17, False, "red"),      # past 16
    ("user_help", 17, True, "green"),     # answered after 1 h: that clock stopped
    ("urgent", 1, False, "green"),
    ("urgent", 1.6, False, "yellow"),
    ("urgent", 2.5, False, "red"),
])
def test_light_in_business_hours(request_type: str, hours_later: float, answered: bool,
                                 state: str) -> None:
    # business hours 08:00-17:00 Berlin: 9 per day; Monday 09:00 + n business hours
    from maildesk.schedule.calendar import add_business_hours

    now = add_business_hours(CAL, MONDAY_9, hours_later)
    first = MONDAY_9 + timedelta(hours=1) if answered else None
    result = light(request_type, MONDAY_9, first, None, now, SlaSettings(), CAL)
    assert result.state == state, result
    assert result.first_response.done is answered


def test_weekend_does_not_count() -> None:
    friday_16 = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)  # 16:00 Berlin
    monday_9 = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
    result = light("urgent", friday_16, None, None, monday_9, SlaSettings(), CAL)
    assert result.first_response.elapsed_hours == pytest.approx(2.0)


def test_tickets_list_shows_sla_and_filters_overdue(desk: Desk) -> None:
    late = desk.ingest(make_mail(subject="alt"))[1]["ticket"]
    desk.ingest(make_mail(subject="neu"))
    with desk.engine().begin() as conn:
        conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == late)
                     .values(created_at=datetime.now(UTC) - timedelta(days=30)))
    rows = desk.list()
    assert {r["number"]: r["sla"]["state"] for r in rows}[late] == "red"
    assert [r["number"] for r in desk.list("--overdue")] == [late]
    assert [r["number"] for r in desk.list("--sla", "red")] == [late]
    table = desk.cli("tickets", "list").stdout
    assert "SLA" in table.splitlines()[0] and "red" in table


def test_release_publish_notifies_waiting_tickets_once(desk: Desk) -> None:
    waiting = [desk.ingest(make_mail(subject=f"Fehler {i}"))[1]["ticket"] for i in range(2)]
    other = desk.ingest(make_mail(subject="anderer Fehler"))[1]["ticket"]
    for number in waiting:
        result = desk.cli("tickets", "set", str(number), "--status", "on_hold",
                          "--planned-version", "5.2", "--dev-item", "DEV-77")
        assert result.exit_code == 0, result.output
    desk.cli("tickets", "set", str(other), "--status", "on_hold", "--planned-version", "5.3")
    assert desk.show(waiting[0])["planned_version"] == "5.2"
    out = json.loads(desk.cli("release", "publish", "5.2", "--note", "Neue Abrechnung",
                              "--json").stdout)
    assert out["tickets"] == waiting and out["notifications"] == 2
    assert [desk.show(n)["status"] for n in waiting] == ["solved", "solved"]
    assert desk.show(other)["status"] == "on_hold"
    again = json.loads(desk.cli("release", "publish", "5.2", "--json").stdout)
    assert again["tickets"] == [] and again["notifications"] == 0
    notices = [r for r in json.loads(desk.cli("outbox", "list", "--json").stdout)
               if r["kind"] == "release_notice"]
    assert len(notices) == 2


def test_release_notice_renders_for_the_worker(desk: Desk) -> None:
    from maildesk.deliver.sender import Sender

    number = desk.ingest(make_mail(subject="wartet"))[1]["ticket"]
    desk.cli("tickets", "set", str(number), "--status", "on_hold", "--planned-version", "6.0")
    desk.cli("release", "publish", "6.0", "--note", "Mit <Export>")
    row = next(r for r in json.loads(desk.cli("outbox", "list", "--json").stdout)
               if r["kind"] == "release_notice")
    sender = Sender(desk.settings, desk.engine())
    message, _, _ = sender.build(sender.claim(row["id"]))
    text = message.get_body(("plain",)).get_content()
    assert "6.0" in text and "Mit <Export>" in text
    assert "Mit &lt;Export&gt;" in message.get_body(("html",)).get_content()


def test_release_publish_counts_one_ticket_in_the_singular(desk: Desk) -> None:
    number = desk.ingest(make_mail(subject="wartet allein"))[1]["ticket"]
    desk.cli("tickets", "set", str(number), "--status", "on_hold", "--planned-version", "7.1")
    out = desk.cli("release", "publish", "7.1").stdout
    assert out.strip() == f"version 7.1: 1 ticket (#{number})"
    assert desk.cli("release", "publish", "7.1").stdout.strip() == \
        "version 7.1: 0 tickets (none waiting)"
