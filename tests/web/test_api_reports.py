"""The report routes of the HTTP API (issue #14) over real HTTP, on SQLite
and PostgreSQL: the figures a support lead checks (tickets per channel and
week, a reason in its agent's bucket, a late answer counted as breached),
the same keys and values as `maildesk report … --json`, a 401 without a
token and a 422 naming the parameter for what cannot be answered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from maildesk.actions import customer
from maildesk.models import Ticket
from maildesk.tickets.reports import period_of
from tests.conftest import Desk
from tests.web.test_api import AGENT, Api, assert_problem, tickets, token
from tests.web.test_api import api as api  # the fixture

ROUTES = ("/reports/tickets", "/reports/csat", "/reports/sla")


async def phone_ticket(api: Api, secret: str, n: int, **extra: Any) -> int:
    status, _, body = await api.post("/tickets", secret, {
        "requester": {"email": f"anrufer{n}@kunde.de"}, "subject": f"Anruf {n}",
        "text": "Rückruf erbeten", "channel": "phone", "acknowledge": False, **extra})
    assert status == 201, body
    return body["number"]


def backdate(desk: Desk, number: int, days: int) -> None:
    """As if the ticket had been opened `days` ago."""
    engine = desk.engine()
    table = Ticket.__table__
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.number == number).values(
            created_at=datetime.now(UTC) - timedelta(days=days)))
    engine.dispose()


async def answer(api: Api, secret: str, number: int, solve: bool = False) -> None:
    status, _, body = await api.post(f"/tickets/{number}/replies", secret,
                                     {"text": "Erledigt, bitte prüfen.", "solve": solve})
    assert status == 201, body


async def documented(api: Api, name: str, body: Any) -> None:
    """The answer matches the schema the OpenAPI document promises."""
    from jsonschema import Draft202012Validator

    _, _, document = await api.get("/openapi.json")
    Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                          "components": document["components"]}).validate(body)


def cli_json(desk: Desk, *args: str) -> dict[str, Any]:
    result = desk.cli("report", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_tickets_per_channel_and_week(api: Api) -> None:
    secret = token(api.desk)
    phone = [await phone_ticket(api, secret, n) for n in range(4)]
    tickets(api.desk, 2)  # by mail
    backdate(api.desk, phone[0], 7)  # last week's call
    today = datetime.now(UTC)
    this_week = period_of(today, "week").label
    last_week = period_of(today - timedelta(days=7), "week").label
    status, _, body = await api.get("/reports/tickets?by=channel&period=week", secret)
    assert status == 200, body
    assert body["total"] == 6
    await documented(api, "TicketReport", body)
    assert [(g["period"], g["key"], g["tickets"]) for g in body["groups"]] == [
        (last_week, "phone", 1), (this_week, "phone", 3), (this_week, "email", 2)]
    assert body["groups"][-1]["start"] == period_of(today, "week").start.isoformat()
    # this week only, as a day range
    monday = period_of(today, "week").start.isoformat()
    _, _, week = await api.get(f"/reports/tickets?by=channel&from={monday}", secret)
    assert (week["from"], week["until"], week["total"]) == (monday, None, 5)
    assert {g["key"]: g["tickets"] for g in week["groups"]} == {"phone": 3, "email": 2}
    _, _, by_status = await api.get("/reports/tickets?by=status", secret)
    assert [(g["key"], g["tickets"]) for g in by_status["groups"]] == [("new", 6)]
    # the CLI prints the same report
    assert cli_json(api.desk, "tickets", "--by", "channel", "--period", "week") == body
    table = api.desk.cli("report", "tickets", "--by", "channel", "--period", "week").stdout
    assert f"{this_week}  phone    3" in table


async def test_a_reason_is_listed_in_its_agents_bucket(api: Api) -> None:
    secret = token(api.desk)
    handled = [await phone_ticket(api, secret, n) for n in range(2)]
    unhandled = await phone_ticket(api, secret, 9)
    for number in handled:
        await answer(api, secret, number, solve=True)  # the agent becomes the assignee
    engine = api.desk.engine()
    for number, score, reason in ((handled[0], 2, "Hat zu lange gedauert"),
                                  (handled[1], 5, ""),
                                  (unhandled, 1, "Niemand hat zurückgerufen")):
        page = customer.ticket_page(engine, number)
        assert page is not None
        customer.record_rating(engine, api.desk.settings, page, score, reason)
    engine.dispose()
    status, _, body = await api.get("/reports/csat?by=agent&period=month", secret)
    assert status == 200, body
    await documented(api, "CsatReport", body)
    month = period_of(datetime.now(UTC), "month").label
    mine, nobody = body["groups"]
    assert (mine["period"], mine["key"], mine["ratings"], mine["average"], mine["csat"]) == (
        month, AGENT, 2, 3.5, 50.0)
    assert [(r["ticket"], r["score"], r["rating"], r["reason"]) for r in mine["reasons"]] == [
        (handled[0], 2, "dissatisfied", "Hat zu lange gedauert")]
    assert (nobody["key"], [r["reason"] for r in nobody["reasons"]]) == (
        "(none)", ["Niemand hat zurückgerufen"])
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    _, _, later = await api.get(f"/reports/csat?from={tomorrow}", secret)
    assert (later["total"], later["groups"]) == (0, [])
    cli = cli_json(api.desk, "csat", "--by", "agent", "--period", "month")
    assert cli.pop("since") is None and cli == body
    listed = api.desk.cli("report", "csat", "--by", "agent", "--reasons").stdout
    assert "Hat zu lange gedauert" in listed and f"#{unhandled}" in listed


async def test_an_answer_after_the_sla_target_is_breached(api: Api) -> None:
    secret = token(api.desk)
    late, on_time, _waiting, forgotten = [await phone_ticket(api, secret, n) for n in range(4)]
    for number in (late, forgotten):
        backdate(api.desk, number, 30)  # far past 16 business hours (user_help)
    await answer(api, secret, late)
    await answer(api, secret, on_time, solve=True)
    status, _, body = await api.get("/reports/sla?by=request_type", secret)
    assert status == 200, body
    await documented(api, "SlaReport", body)
    assert body["targets"]["user_help"] == {"first_response_hours": 16.0,
                                            "resolution_hours": 80.0}
    [group] = body["groups"]
    assert (group["key"], group["tickets"]) == ("user_help", 4)
    first = group["first_response"]
    assert (first["count"], first["met"], first["breached"], first["open"]) == (2, 1, 2, 1)
    assert first["met_pct"] == 33.3
    late_hours = api.desk.show(late)["sla"]["first_response"]["elapsed_hours"]
    assert late_hours > 16 and first["p90_hours"] == late_hours
    solved = group["resolution"]
    assert (solved["count"], solved["met"], solved["breached"], solved["open"]) == (1, 1, 2, 1)
    # only what was opened today: nothing is late
    today = datetime.now(UTC).date().isoformat()
    _, _, fresh = await api.get(f"/reports/sla?from={today}&until={today}", secret)
    assert fresh["total"] == 2
    assert fresh["groups"][0]["first_response"]["breached"] == 0
    assert cli_json(api.desk, "sla", "--by", "request_type") == body
    assert "1/2/1" in api.desk.cli("report", "sla").stdout


async def test_reports_need_a_token(api: Api) -> None:
    for path in ROUTES:
        assert_problem(*await api.get(path), 401)
        assert_problem(*await api.get(path, "mdk_" + "x" * 43), 401)


#: What cannot be answered, and the parameter the 422 names.
REFUSED = [
    ("/reports/tickets?by=priority", "by"),
    ("/reports/tickets?period=year", "period"),
    ("/reports/tickets?from=2026-13-01", "from"),
    ("/reports/sla?until=1.12.2026", "until"),
    ("/reports/csat?by=channel", "by"),
    ("/reports/tickets?from=2026-05-01&until=2026-04-30", "from"),
    ("/reports/sla?period=day&from=2020-01-01&until=2026-01-01", "from"),
    ("/reports/csat?period=week&period=month", "period"),
    ("/reports/tickets?color=red", "color"),
]


async def test_what_cannot_be_answered_is_a_422_naming_the_parameter(api: Api) -> None:
    secret = token(api.desk)
    for query, field in REFUSED:
        status, headers, body = await api.get(query, secret)
        assert_problem(status, headers, body, 422)
        assert body["field"] == field, (query, body)
    # a daily report over three years is fine, by week any range
    assert (await api.get("/reports/tickets?period=day&from=2024-01-01&until=2026-12-31",
                          secret))[0] == 200
    assert (await api.get("/reports/tickets?period=week&from=2000-01-01", secret))[0] == 200
    # the CLI refuses the same with exit 2
    refused = api.desk.cli("report", "tickets", "--from", "2026-05-01", "--until", "2026-04-30")
    assert refused.exit_code == 2 and "after until" in refused.stderr
    refused = api.desk.cli("report", "sla", "--period", "day", "--from", "2020-01-01",
                           "--until", "2026-01-01")
    assert refused.exit_code == 2 and "period=day" in refused.stderr
    assert api.desk.cli("report", "csat", "--since", "gestern").exit_code == 2
