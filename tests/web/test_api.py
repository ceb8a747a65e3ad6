"""The HTTP API (issue #14) over real HTTP, on SQLite and PostgreSQL:
tokens from the CLI, every failure of authentication answered as a problem
document and slowed down, the ticket routes with their filters and a
cursor that survives new tickets, and an OpenAPI document that lists every
route and whose schemas the answers match."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from maildesk.web import server as web_server
from maildesk.web.api import PREFIX, ROUTES
from maildesk.web.api import auth as api_auth
from maildesk.web.metrics import DaemonMetrics
from tests.conftest import Desk
from tests.mailfactory import make_mail

AGENT = "agent@example.com"


@dataclass
class Api:
    desk: Desk
    port: int
    client: aiohttp.ClientSession

    async def post(self, path: str, token: str | None, body: Any = None,
                   raw: bytes | None = None, content_type: str = "application/json",
                   ) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.client.post(f"http://127.0.0.1:{self.port}{PREFIX}{path}",
                                    data=data, headers=headers) as response:
            text = await response.text()
            return response.status, dict(response.headers), json.loads(text) if text else None

    async def patch(self, path: str, token: str | None,
                    body: Any) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.client.patch(f"http://127.0.0.1:{self.port}{PREFIX}{path}",
                                     data=json.dumps(body), headers=headers) as response:
            text = await response.text()
            return response.status, dict(response.headers), json.loads(text) if text else None

    async def get(self, path: str, token: str | None = None,
                  **headers: str) -> tuple[int, dict[str, str], Any]:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.client.get(f"http://127.0.0.1:{self.port}{PREFIX}{path}",
                                   headers=headers) as response:
            body = await response.text()
            return response.status, dict(response.headers), json.loads(body) if body else None


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[Api]:
    settings = desk.settings.model_copy(update={
        "web": desk.settings.web.model_copy(update={"port": 0})})
    engine = desk.engine()
    runner = await web_server.start_web(settings, engine, DaemonMetrics(lambda: []),
                                        lambda ids: None)
    async with aiohttp.ClientSession() as client:
        try:
            yield Api(desk, runner.addresses[0][1], client)
        finally:
            await runner.cleanup()
            engine.dispose()


def token(desk: Desk, *args: str) -> str:
    result = desk.cli("tokens", "create", "--agent", AGENT, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


_made = iter(range(10**6))


def tickets(desk: Desk, count: int) -> list[int]:
    numbers = []
    for n in (next(_made) for _ in range(count)):
        _, out = desk.ingest(make_mail(subject=f"Heizung {n}", sender=f"k{n}@firma{n % 3}.de",
                                       message_id=f"<api-{n}-{id(desk)}@firma.de>"))
        numbers.append(out["ticket"])
    return numbers


def assert_problem(status: int, headers: dict[str, str], body: Any, expected: int) -> None:
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == expected and body["type"].startswith("https://")
    assert body["title"] and body["detail"]


async def test_a_token_is_shown_once_and_only_its_hash_is_kept(api: Api) -> None:
    secret = token(api.desk, "--name", "CRM")
    listed = api.desk.cli("tokens", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["agent"], r["name"], r["scope"]) for r in rows] == [(AGENT, "CRM", "agent")]
    assert secret not in listed.stdout and secret.startswith(rows[0]["prefix"])
    with api.desk.engine().connect() as conn:
        stored = " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM api_token")
                          for v in row)
    assert secret not in stored
    refused = api.desk.cli("tokens", "create", "--agent", "stranger@example.org")
    assert refused.exit_code == 1 and "no agent of the config" in refused.output
    unknown = api.desk.cli("tokens", "revoke", "4711")
    assert unknown.exit_code == 1 and "no active token 4711" in unknown.output
    table = api.desk.cli("tokens", "list").stdout
    assert rows[0]["prefix"] in table and "CRM" in table and secret not in table


async def test_without_a_valid_token_nothing_is_read(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # the CLI's logging setup stops propagation to the root logger: listen here
    logging.getLogger(api_auth.__name__).addHandler(caplog.handler)
    tickets(api.desk, 1)
    good = token(api.desk)
    revoked = token(api.desk)
    revoked_id = json.loads(api.desk.cli("tokens", "list", "--json").stdout)[-1]["id"]
    assert api.desk.cli("tokens", "revoke", str(revoked_id)).exit_code == 0
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for attempt in (None, "", "nonsense", forged, revoked):
        status, headers, body = await api.get("/tickets", attempt)
        assert_problem(status, headers, body, 401)
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert "items" not in body
    basic = await api.get("/tickets", Authorization="Basic YWdlbnQ6c2VjcmV0")
    assert_problem(*basic, 401)
    status, _, body = await api.get("/tickets", good)
    assert status == 200 and len(body["items"]) == 1
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "authentication failed from 127.0.0.1" in logged
    for secret in (good, forged, revoked):
        assert secret not in logged


async def test_a_revoked_token_stops_working_within_the_cache_second(api: Api) -> None:
    secret = token(api.desk)
    assert (await api.get("/tickets", secret))[0] == 200  # now remembered as good
    token_id = json.loads(api.desk.cli("tokens", "list", "--json").stdout)[-1]["id"]
    assert api.desk.cli("tokens", "revoke", str(token_id)).exit_code == 0
    await asyncio.sleep(api_auth.TOKEN_CACHE_SECONDS + 0.1)
    assert_problem(*await api.get("/tickets", secret), 401)


async def test_guessing_is_slowed_down_per_client_address(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    good = token(api.desk)
    for _ in range(api_auth.FAILURES_ALLOWED):
        assert (await api.get("/tickets", "mdk_" + "x" * 43))[0] == 401
    status, headers, body = await api.get("/tickets", good)  # even the right one, for now
    assert_problem(status, headers, body, 429)
    assert 1 <= int(headers["Retry-After"]) <= api_auth.FAILURE_WINDOW


def test_the_failure_limiter_forgets_after_its_window() -> None:
    now = [1000.0]
    limiter = api_auth.FailureLimiter(allowed=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.blocked_for("10.0.0.1") == 60 and limiter.blocked_for("10.0.0.2") == 0
    now[0] += 59.5
    assert limiter.blocked_for("10.0.0.1") == pytest.approx(0.5)
    now[0] += 1
    assert limiter.blocked_for("10.0.0.1") == 0


async def test_tickets_list_filters_and_a_cursor_stable_under_new_tickets(api: Api) -> None:
    numbers = tickets(api.desk, 7)
    secret = token(api.desk)
    status, _, page1 = await api.get("/tickets?limit=3", secret)
    assert status == 200
    assert [t["number"] for t in page1["items"]] == numbers[::-1][:3]
    tickets(api.desk, 2)  # new tickets arrive between two pages
    _, _, page2 = await api.get(f"/tickets?limit=3&cursor={page1['next_cursor']}", secret)
    _, _, page3 = await api.get(f"/tickets?limit=3&cursor={page2['next_cursor']}", secret)
    seen = [t["number"] for page in (page1, page2, page3) for t in page["items"]]
    assert seen == numbers[::-1]  # nothing repeated, nothing skipped
    assert page3["next_cursor"] is None
    # the same keys as the CLI's --json
    cli = json.loads(api.desk.cli("tickets", "list", "--json").stdout)
    assert set(page1["items"][0]) == set(cli[0])
    wanted = page1["items"][1]["subject"]
    _, _, found = await api.get(f"/tickets?q={quote(wanted)}", secret)
    assert wanted in [t["subject"] for t in found["items"]]
    assert all(t["subject"].startswith(wanted) for t in found["items"])
    _, _, new = await api.get("/tickets?status=new&limit=200", secret)
    assert len(new["items"]) == 9
    _, _, none = await api.get("/tickets?status=closed", secret)
    assert none["items"] == []
    _, _, later = await api.get("/tickets?updated_since=2999-01-01T00:00:00Z", secret)
    assert later["items"] == []


async def test_tickets_are_found_by_assignee_type_channel_requester_and_organisation(
        api: Api) -> None:
    mine, other, unassigned = tickets(api.desk, 3)
    secret = token(api.desk)
    assert (await api.patch(f"/tickets/{mine}", secret, {"assignee": AGENT}))[0] == 200
    assert (await api.patch(f"/tickets/{other}", secret, {"request_type": "incident"}))[0] == 200
    status, _, phone = await api.post("/tickets", secret, PHONE)
    assert status == 201

    async def numbers(query: str) -> list[int]:
        status, _, page = await api.get(f"/tickets?{query}&limit=200", secret)
        assert status == 200, page
        return sorted(t["number"] for t in page["items"])

    assert await numbers("assignee=me") == [mine]
    assert await numbers(f"assignee={quote(AGENT)}") == [mine]
    assert await numbers("assignee=none") == sorted([other, unassigned, phone["number"]])
    assert await numbers("assignee=someone%40else.org") == []
    assert await numbers("request_type=incident") == sorted([other, phone["number"]])
    assert await numbers("channel=phone") == [phone["number"]]
    assert await numbers("requester=ERIKA%40kunde.de") == [phone["number"]]
    _, _, one = await api.get(f"/tickets/{unassigned}", secret)
    organisation = one["organisation"]
    assert await numbers(f"organisation={quote(organisation)}") == [unassigned]
    assert await numbers("channel=phone&request_type=user_help") == []
    cli = json.loads(api.desk.cli("tickets", "list", "--assignee", AGENT, "--json").stdout)
    assert [t["number"] for t in cli] == [mine]
    cli = json.loads(api.desk.cli("tickets", "list", "--channel", "phone", "--json").stdout)
    assert [t["number"] for t in cli] == [phone["number"]]
    cli = json.loads(api.desk.cli("tickets", "list", "--organisation", organisation,
                                  "--json").stdout)
    assert [t["number"] for t in cli] == [unassigned]


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("status=gone", "status"),
    ("cursor=abc", "cursor"), ("updated_since=yesterday", "updated_since"),
    ("unknown=1", "unknown"), ("q=a&q=b", "q"), ("status=open&status=solved", "status"),
])
async def test_a_wrong_parameter_is_a_422_naming_it(api: Api, query: str, field: str) -> None:
    status, headers, body = await api.get(f"/tickets?{query}", token(api.desk))
    assert_problem(status, headers, body, 422)
    assert body["field"] == field


async def test_one_ticket_and_the_problems_around_it(api: Api) -> None:
    number = tickets(api.desk, 1)[0]
    secret = token(api.desk)
    status, _, body = await api.get(f"/tickets/{number}", secret)
    assert status == 200
    cli = json.loads(api.desk.cli("tickets", "show", str(number), "--json").stdout)
    assert body == json.loads(json.dumps(cli))  # the CLI's keys and values
    assert_problem(*await api.get("/tickets/99999999", secret), 404)
    assert_problem(*await api.get("/tickets/x1", secret), 422)
    assert_problem(*await api.get("/nothing-here", secret), 404)
    assert_problem(*await api.get(f"/tickets/{number}", None), 401)


def outbox_kinds(desk: Desk) -> list[tuple[str, str]]:
    with desk.engine().connect() as conn:
        return [(r.kind, r.to_addrs) for r in conn.exec_driver_sql(
            "SELECT kind, to_addrs FROM outbox ORDER BY id")]


PHONE = {"requester": {"email": "Erika@Kunde.de", "name": "Erika Mustermann"},
         "subject": "Drucker druckt nicht", "text": "Anruf 9:40: Drucker im 2. OG.",
         "channel": "phone", "request_type": "incident"}


async def test_a_phone_ticket_is_opened_and_acknowledged(api: Api) -> None:
    secret = token(api.desk)
    status, headers, body = await api.post("/tickets", secret, PHONE)
    assert status == 201, body
    assert headers["Location"].endswith(f"/tickets/{body['number']}")
    assert (body["channel"], body["request_type"], body["status"]) == (
        "phone", "incident", "new")
    assert body["priority"] == "normal"  # what the request type gives, as for mail
    assert body["requester"]["email"] == "erika@kunde.de"
    assert body["messages"][0]["text"] == PHONE["text"]
    kinds = outbox_kinds(api.desk)
    assert ("acknowledgement", "erika@kunde.de") in kinds
    assert all(to != AGENT for kind, to in kinds)  # the recording agent is not told
    history = json.loads(api.desk.cli("tickets", "show", str(body["number"]), "--json").stdout)
    assert any(AGENT in str(e) and "phone" in str(e) for e in history["events"])
    quiet = await api.post("/tickets", secret, {**PHONE, "acknowledge": False})
    assert quiet[0] == 201 and len(outbox_kinds(api.desk)) == len(kinds)


@pytest.mark.parametrize("change, field", [
    ({"requester": {"email": "kein-at-zeichen"}}, "requester"),
    ({"subject": ""}, "subject"),
    ({"text": " "}, "text"),
    ({"channel": "fax"}, "channel"),
    ({"request_type": "wish"}, "request_type"),
    ({"priority": "high"}, "priority"),
])
async def test_a_ticket_that_cannot_be_made_is_a_422_and_nothing_is_written(
        api: Api, change: dict[str, Any], field: str) -> None:
    status, headers, body = await api.post("/tickets", token(api.desk), {**PHONE, **change})
    assert_problem(status, headers, body, 422)
    assert body["field"].startswith(field), body
    assert json.loads(api.desk.cli("tickets", "list", "--json").stdout) == []


async def test_creating_needs_a_token_and_json(api: Api) -> None:
    assert_problem(*await api.post("/tickets", None, PHONE), 401)
    secret = token(api.desk)
    assert_problem(*await api.post("/tickets", secret, raw=b"{nope"), 400)
    assert_problem(*await api.post("/tickets", secret, raw=b"subject=x",
                                   content_type="application/x-www-form-urlencoded"), 415)
    assert json.loads(api.desk.cli("tickets", "list", "--json").stdout) == []
    assert outbox_kinds(api.desk) == []


async def test_an_agent_works_a_ticket_through_the_api(api: Api) -> None:
    number = tickets(api.desk, 1)[0]
    secret = token(api.desk)
    before = len(outbox_kinds(api.desk))
    status, _, note = await api.post(f"/tickets/{number}/notes", secret,
                                     {"text": "Rückruf vereinbart"})
    assert status == 201
    assert any(m["text"] == "Rückruf vereinbart" and m["direction"] == "internal"
               for m in note["messages"])
    assert len(outbox_kinds(api.desk)) == before  # a note tells the customer nothing
    status, _, answer = await api.post(f"/tickets/{number}/replies", secret,
                                       {"text": "Der Techniker kommt morgen."})
    assert status == 201 and answer["status"] == "open"
    assert answer["reply_to"] and answer["message_id"]
    assert outbox_kinds(api.desk)[-1][0] == "agent_reply"
    status, _, changed = await api.patch(f"/tickets/{number}", secret,
                                         {"status": "pending", "priority": "high",
                                          "assignee": AGENT})
    assert status == 200, changed
    assert changed["ticket"]["status"] == "pending" and changed["ticket"]["assignee"] == AGENT
    assert any(c.startswith("priority: ") for c in changed["changes"])
    events = json.loads(api.desk.cli("tickets", "show", str(number), "--json").stdout)["events"]
    assert any(e.get("actor") == AGENT and e.get("field") == "status" for e in events), events
    status, _, solved = await api.post(f"/tickets/{number}/replies", secret,
                                       {"text": "Erledigt.", "solve": True})
    assert solved["status"] == "solved" and outbox_kinds(api.desk)[-1][0] == "solution"


async def test_ticket_writes_refuse_what_cannot_be_done(api: Api) -> None:
    number = tickets(api.desk, 1)[0]
    secret = token(api.desk)
    assert_problem(*await api.post("/tickets/99999999/replies", secret, {"text": "x"}), 404)
    assert_problem(*await api.post(f"/tickets/{number}/replies", secret, {"text": ""}), 422)
    assert_problem(*await api.post(f"/tickets/{number}/notes", None, {"text": "x"}), 401)
    assert_problem(*await api.patch(f"/tickets/{number}", secret, {}), 422)
    assert_problem(*await api.patch(f"/tickets/{number}", secret, {"status": "gone"}), 422)
    refused = await api.patch(f"/tickets/{number}", secret, {"assignee": "nobody@else.org"})
    assert_problem(*refused, 422)
    assert "not an agent" in refused[2]["detail"]
    _, _, ticket = await api.get(f"/tickets/{number}", secret)
    assert (ticket["status"], ticket["assignee"]) == ("new", None)
    assert [m["direction"] for m in ticket["messages"]] == ["in"]


async def test_held_mail_is_an_admins_business(api: Api) -> None:
    for n in (1, 2):
        api.desk.ingest(make_mail(subject=f"Bitte Rückruf {n}", sender=f"h{n}@kunde.de",
                                  extra_headers={"Auto-Submitted": "auto-replied"}))
    agent, admin = token(api.desk), token(api.desk, "--scope", "admin")
    for attempt in (await api.get("/held", agent),
                    await api.post("/held/1/recover", agent, {})):
        assert_problem(*attempt, 403)
    async with api.client.delete(f"http://127.0.0.1:{api.port}{PREFIX}/held/1",
                                 headers={"Authorization": f"Bearer {agent}"}) as refused:
        assert refused.status == 403
    status, _, page = await api.get("/held", admin)
    assert status == 200
    held = sorted(item["id"] for item in page["items"])
    assert len(held) == 2 and all(i["state"] == "held" for i in page["items"])
    status, _, recovered = await api.post(f"/held/{held[0]}/recover", admin, {})
    assert status == 200 and recovered["action"] == "created" and recovered["ticket"]
    assert_problem(*await api.post(f"/held/{held[0]}/recover", admin, {}), 404)  # once only
    url = f"http://127.0.0.1:{api.port}{PREFIX}/held/{held[1]}"
    async with api.client.delete(url, headers={"Authorization": f"Bearer {admin}"}) as gone:
        assert gone.status == 204
    async with api.client.delete(url, headers={"Authorization": f"Bearer {admin}"}) as again:
        assert again.status == 404
    _, _, left = await api.get("/held", admin)
    assert left["items"] == []
    _, _, deleted = await api.get("/held?state=deleted", admin)
    assert [(i["id"], i["resolved_by"]) for i in deleted["items"]] == [(held[1], AGENT)]


async def test_notifications_listed_and_a_failed_one_queued_again_by_an_admin(
        api: Api) -> None:
    tickets(api.desk, 1)  # an acknowledgement and agent notices, queued
    agent, admin = token(api.desk), token(api.desk, "--scope", "admin")
    status, _, page = await api.get("/outbox?limit=10", agent)
    assert status == 200 and page["items"]
    rows = {r["kind"]: r for r in page["items"]}
    ack = rows["acknowledgement"]
    assert ack["to"] == [ack["to"][0]] and ack["state"] == "queued"
    with api.desk.engine().begin() as conn:
        conn.exec_driver_sql(f"UPDATE outbox SET state='failed' WHERE id={ack['id']}")
        conn.exec_driver_sql(f"UPDATE outbox SET state='sent' WHERE id != {ack['id']}")
    sent = next(r["id"] for r in page["items"] if r["id"] != ack["id"])
    assert_problem(*await api.post(f"/outbox/{ack['id']}/retry", agent, {}), 403)
    status, _, done = await api.post(f"/outbox/{ack['id']}/retry", admin, {})
    assert status == 200 and done == {"id": ack["id"], "was": "failed"}
    assert_problem(*await api.post(f"/outbox/{sent}/retry", admin, {}), 409)
    assert_problem(*await api.post("/outbox/987654321/retry", admin, {}), 404)
    _, _, failed = await api.get("/outbox?state=failed", agent)
    assert failed["items"] == []


def test_the_cli_opens_a_ticket_without_a_mail(desk: Desk) -> None:
    result = desk.cli("tickets", "create", "--requester", "max@kunde.de", "--subject",
                      "Rückruf", "--text", "Bitte zurückrufen.", "--channel", "web")
    assert result.exit_code == 0, result.output
    assert "created for max@kunde.de (web); acknowledgement queued" in result.output
    listed = json.loads(desk.cli("tickets", "list", "--json").stdout)
    assert [(t["subject"], t["channel"]) for t in listed] == [("Rückruf", "web")]
    bad = desk.cli("tickets", "create", "--requester", "max", "--subject", "x", "--text", "y")
    assert bad.exit_code == 2 and "requester: not an e-mail address" in bad.output


async def test_the_openapi_document_lists_every_route_and_is_public(api: Api) -> None:
    status, _, document = await api.get("/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, operations in document["paths"].items()
              for method in operations}
    assert listed == {(r.method, PREFIX + r.path) for r in ROUTES}
    list_op = document["paths"][f"{PREFIX}/tickets"]["get"]
    assert {p["name"] for p in list_op["parameters"]} >= {"status", "q", "limit", "cursor",
                                                        "updated_since"}
    assert "401" in list_op["responses"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_answers_match_the_documented_schema(api: Api) -> None:
    from jsonschema import Draft202012Validator

    number = tickets(api.desk, 2)[0]
    secret = token(api.desk)
    _, _, document = await api.get("/openapi.json")
    schemas = document["components"]["schemas"]

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                     "components": {"schemas": schemas}})

    _, _, page = await api.get("/tickets", secret)
    validator("TicketPage").validate(page)
    _, _, one = await api.get(f"/tickets/{number}", secret)
    validator("TicketDetail").validate(one)
    _, _, problem = await api.get("/tickets/99999999", secret)
    validator("ProblemDocument").validate(problem)
    logging.getLogger(__name__).debug("validated %d schemas", len(schemas))
