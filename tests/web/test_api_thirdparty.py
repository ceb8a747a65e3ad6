"""POST /api/v1/tickets/{n}/ask and /forward over real HTTP: the request
written and its reply address answered, the detail listing it, and every
caller without the right (no token, a revoked one, an unknown ticket, a
request nobody could answer) changing nothing."""

from __future__ import annotations

import json

from tests.actions.test_thirdparty import DORA, answer, kinds_to
from tests.web.test_api import Api, api, assert_problem, tickets, token  # noqa: F401


async def test_ask_through_the_api_and_the_answer_is_an_internal_note(api: Api) -> None:  # noqa: F811
    (number,) = tickets(api.desk, 1)
    secret = token(api.desk)
    status, _, body = await api.post(f"/tickets/{number}/ask", secret,
                                     {"to": DORA, "text": "Stimmt die Zählernummer?"})
    assert status == 201, body
    assert (body["number"], body["kind"], body["to"]) == (number, "ask", DORA)
    assert body["reply_to"].startswith("support+tp-")
    status, _, detail = await api.get(f"/tickets/{number}", secret)
    assert [(r["kind"], r["to"], r["actor"]) for r in detail["third_party"]] == [
        ("ask", DORA, "agent@example.com")]
    assert ("third_party_ask", DORA) in kinds_to(api.desk)
    answer(api.desk, body["reply_to"])
    status, _, detail = await api.get(f"/tickets/{number}", secret)
    assert detail["messages"][-1]["direction"] == "internal"
    assert detail["third_party"][0]["answered_at"] is not None


async def test_forward_needs_no_text(api: Api) -> None:  # noqa: F811
    (number,) = tickets(api.desk, 1)
    status, _, body = await api.post(f"/tickets/{number}/forward", token(api.desk),
                                     {"to": "eva@lob.example"})
    assert status == 201 and body["kind"] == "forward", body


async def test_nobody_without_the_right_asks_anyone(api: Api) -> None:  # noqa: F811
    (number,) = tickets(api.desk, 1)
    secret = token(api.desk)
    before = kinds_to(api.desk)
    ask = {"to": DORA, "text": "Frage"}
    assert_problem(*await api.post(f"/tickets/{number}/ask", None, ask), 401)
    assert_problem(*await api.post(f"/tickets/{number}/ask", "md_forged", ask), 401)
    revoked = token(api.desk, "--name", "old")
    rows = json.loads(api.desk.cli("tokens", "list", "--json").stdout)
    old = next(r["id"] for r in rows if r["name"] == "old")
    assert api.desk.cli("tokens", "revoke", str(old)).exit_code == 0
    assert_problem(*await api.post(f"/tickets/{number}/forward", revoked, ask), 401)
    assert_problem(*await api.post("/tickets/99999/ask", secret, ask), 404)
    # requests nobody could answer, or that would loop back to us
    for bad in ({"to": "support@example.com", "text": "x"},
                {"to": "no-reply@partner.example", "text": "x"},
                {"to": "kein mail", "text": "x"},
                {"to": DORA, "text": "  "},
                {"to": DORA, "text": "x", "cc": "a@b.example"}):
        status, headers, body = await api.post(f"/tickets/{number}/ask", secret, bad)
        assert_problem(status, headers, body, 422)
    assert kinds_to(api.desk) == before
    status, _, detail = await api.get(f"/tickets/{number}", secret)
    assert detail["third_party"] == []
