"""The ticket page's buttons (issue 16): "my request is solved", follow,
stop the mails — over real HTTP on both databases, tried as the requester,
a main contact of the organisation, a plain colleague who may not see the
ticket, a customer of another organisation, a logged-out visitor, and
with a missing CSRF token or a foreign Origin. Nobody but who may changes
anything.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from maildesk.models import Event, Outbox, Participant, Ticket
from tests.conftest import Desk
from tests.web.test_pages import AGENT, Site
from tests.web.test_portal_login import ERIKA, form_token, log_in, mail_ticket, rows

pytestmark = pytest.mark.usefixtures("quick_answers")
BOSS, COLLEAGUE, STRANGER = "chefin@kunde.de", "kollege@kunde.de", "fremd@anders-gmbh.de"


def cli_ok(desk: Desk, *args: str) -> None:
    result = desk.cli(*args)
    assert result.exit_code == 0, result.output


def status_of(desk: Desk, number: int) -> str:
    return next(t["status"] for t in rows(desk, Ticket.__table__) if t["number"] == number)


def participants(desk: Desk) -> list[tuple[str, str]]:
    return sorted((p["email"], p["role"]) for p in rows(desk, Participant.__table__))


def kinds(desk: Desk) -> list[str]:
    """The mails queued, but the login links (each test logs in)."""
    return [r["kind"] for r in rows(desk, Outbox.__table__) if r["kind"] != "portal_login"]


async def view(site: Site, number: int, client: aiohttp.ClientSession) -> tuple[int, str]:
    async with client.get(f"http://127.0.0.1:{site.port}/portal/tickets/{number}") as r:
        return r.status, await r.text()


async def press(site: Site, number: int, action: str, client: aiohttp.ClientSession,
                token: str | None, **kwargs: object) -> tuple[int, str]:
    data = {"csrf": token} if token is not None else {}
    async with client.post(f"http://127.0.0.1:{site.port}/portal/tickets/{number}/{action}",
                           data=data, allow_redirects=False, **kwargs) as r:
        return r.status, r.headers.get("Location", "")


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def button(page: str, number: int, action: str) -> str | None:
    found = re.search(f'action="/portal/tickets/{number}/{action}"', page)
    return form_token(page, f"/portal/tickets/{number}/{action}") if found else None


async def test_the_requester_marks_it_solved_once_support_has_answered(site: Site) -> None:
    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    assert (await log_in(site, ERIKA))[0] == 200
    _, page = await view(site, number, site.client)
    assert button(page, number, "solve") is None  # nothing answered yet
    token = button(page, number, "unfollow") or form_token(
        page, f"/portal/tickets/{number}/messages")
    # pressed anyway (a forged form): refused, nothing changes
    status, location = await press(site, number, "solve", site.client,
                                   _signed(site, number, "solve"))
    assert (status, location) == (303, f"/portal/tickets/{number}?done=not_solve")
    assert status_of(site.desk, number) == "new" and token

    cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text",
           "Bitte starten Sie den Drucker neu.")
    _, page = await view(site, number, site.client)
    token = button(page, number, "solve")
    assert token and "Meine Anfrage ist gelöst" in page
    before = kinds(site.desk)
    assert await press(site, number, "solve", site.client, token) == (
        303, f"/portal/tickets/{number}?done=solve")
    assert status_of(site.desk, number) == "solved"
    assert sorted(kinds(site.desk)) == sorted([*before, "solved_by_customer",
                                               "agent_notice_solved"])
    history = [e for e in rows(site.desk, Event.__table__) if e["field"] == "solved_by_customer"]
    assert [(e["actor"], e["new"]) for e in history] == [(ERIKA, "marked solved in the portal")]
    _, page = await view(site, number, site.client)
    assert "als gelöst markiert" not in page and button(page, number, "solve") is None
    # the second press (a double click, the back button): nothing more is sent
    assert (await press(site, number, "solve", site.client, token))[1].endswith("not_solve")
    assert len(kinds(site.desk)) == len(before) + 2


def _signed(site: Site, number: int, action: str) -> str:
    from tests.web.test_portal_ticket import signed

    return signed(site, f"/portal/tickets/{number}/{action}")


async def test_a_main_contact_follows_and_unfollows_a_colleagues_ticket(site: Site) -> None:
    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    mail_ticket(site.desk, BOSS, "Vertrag")
    cli_ok(site.desk, "customers", "set", BOSS, "--role", "main_contact")
    async with browser() as boss:
        assert (await log_in(site, BOSS, boss))[0] == 200
        status, page = await view(site, number, boss)
        assert status == 200 and button(page, number, "solve") is None  # not hers to close
        token = button(page, number, "follow")
        assert token
        assert await press(site, number, "follow", boss, token) == (
            303, f"/portal/tickets/{number}?done=follow")
        assert participants(site.desk) == [(BOSS, "follower")]
        _, page = await view(site, number, boss)
        assert "Sie folgen dieser Anfrage" in page and button(page, number, "follow") is None
        # the reply now goes to her too
        cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text", "Hallo")
        assert any(BOSS in (r["to_addrs"] + r["cc_addrs"])
                   for r in rows(site.desk, Outbox.__table__) if r["kind"] == "agent_reply")
        token = button(page, number, "unfollow")
        assert await press(site, number, "unfollow", boss, token) == (
            303, f"/portal/tickets/{number}?done=unfollow")
        assert participants(site.desk) == []
        removed = [e for e in rows(site.desk, Event.__table__)
                   if e["field"] == "follower" and e["old"] == BOSS]
        assert [e["actor"] for e in removed] == [BOSS]


async def test_nobody_without_the_right_changes_anything(site: Site) -> None:
    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    mail_ticket(site.desk, COLLEAGUE, "Monitor")
    mail_ticket(site.desk, STRANGER, "Angebot")
    cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text", "Neustart?")
    before = (status_of(site.desk, number), participants(site.desk), kinds(site.desk))
    for who in (COLLEAGUE, STRANGER):  # a plain colleague and another organisation
        async with browser() as other:
            assert (await log_in(site, who, other))[0] == 200
            for action in ("solve", "follow", "unfollow"):
                status, _ = await press(site, number, action, other,
                                        _signed_for(site, other, number, action))
                assert status == 404, (who, action)
    # the requester's own browser, but the form forged or sent from elsewhere
    assert (await log_in(site, ERIKA))[0] == 200
    for action in ("solve", "follow", "unfollow"):
        assert (await press(site, number, action, site.client, None))[0] == 403
        assert (await press(site, number, action, site.client, _signed(site, number, action),
                            headers={"Origin": "https://evil.example"}))[0] == 403
    async with browser() as visitor:  # no session at all
        status, location = await press(site, number, "solve", visitor, "x")
        assert status in (303, 403) and "tickets" not in location
    assert (status_of(site.desk, number), participants(site.desk),
            kinds(site.desk)) == before


def _signed_for(site: Site, client: aiohttp.ClientSession, number: int, action: str) -> str:
    from yarl import URL

    from maildesk.web import csrf

    cookie = client.cookie_jar.filter_cookies(URL(f"http://127.0.0.1:{site.port}/"))
    return csrf._sign(site.secret, cookie[csrf.COOKIE].value,
                      f"/portal/tickets/{number}/{action}")


async def test_the_requester_puts_a_colleague_in_copy_and_nobody_else_can(site: Site) -> None:
    from maildesk.models import Customer

    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    other = mail_ticket(site.desk, COLLEAGUE, "Monitor")
    mail_ticket(site.desk, STRANGER, "Angebot")
    mail_ticket(site.desk, "neu@kunde.de", "Zugang")  # a colleague, not confirmed
    for who in (COLLEAGUE, STRANGER):
        cli_ok(site.desk, "customers", "set", who, "--confirmed")
    ids = {c["email"]: c["id"] for c in rows(site.desk, Customer.__table__)}
    assert (await log_in(site, ERIKA))[0] == 200
    _, page = await view(site, number, site.client)
    token = button(page, number, "cc")
    assert token and COLLEAGUE in page
    assert STRANGER not in page and "neu@kunde.de" not in page
    before = participants(site.desk)

    async def cc(client: aiohttp.ClientSession, signed: str | None, *values: object,
                 at: int = number, **kwargs: object) -> tuple[int, str]:
        data = aiohttp.FormData()
        if signed is not None:
            data.add_field("csrf", signed)
        for value in values:
            data.add_field("cc", str(value))
        async with client.post(f"http://127.0.0.1:{site.port}/portal/tickets/{at}/cc",
                               data=data, allow_redirects=False, **kwargs) as r:
            return r.status, r.headers.get("Location", "")

    refused = (303, f"/portal/tickets/{number}?done=not_cc")
    # forged ids: another organisation's customer, an unconfirmed colleague,
    # nothing ticked, no number at all; one bad id refuses the whole form
    assert await cc(site.client, token, ids[STRANGER]) == refused
    assert await cc(site.client, token, ids["neu@kunde.de"]) == refused
    assert await cc(site.client, token, ids[COLLEAGUE], ids[STRANGER]) == refused
    assert await cc(site.client, token) == refused
    assert await cc(site.client, token, "kollege@kunde.de") == refused
    # the form forged or sent from elsewhere
    assert (await cc(site.client, None, ids[COLLEAGUE]))[0] == 403
    assert (await cc(site.client, token, ids[COLLEAGUE],
                     headers={"Origin": "https://evil.example"}))[0] == 403
    # the colleague's own ticket, which the requester may not see: 404
    assert (await cc(site.client, _signed(site, other, "cc"), ids[COLLEAGUE], at=other)
            )[0] == 404
    for who in (COLLEAGUE, STRANGER):  # neither may put anyone on Erika's ticket
        async with browser() as intruder:
            assert (await log_in(site, who, intruder))[0] == 200
            status, _ = await cc(intruder, _signed_for(site, intruder, number, "cc"),
                                 ids[COLLEAGUE])
            assert status == 404, who
    async with browser() as visitor:
        status, location = await cc(visitor, "x", ids[COLLEAGUE])
        assert status in (303, 403) and "done=cc" not in location
    assert participants(site.desk) == before

    # the real form: the colleague is in copy, the history names Erika
    assert await cc(site.client, token, ids[COLLEAGUE]) == (
        303, f"/portal/tickets/{number}?done=cc")
    assert participants(site.desk) == [(COLLEAGUE, "cc")]
    added = [e for e in rows(site.desk, Event.__table__) if e["field"] == "participant"]
    assert [(e["actor"], e["new"]) for e in added] == [(ERIKA, COLLEAGUE)]
    async with site.client.get(f"http://127.0.0.1:{site.port}/portal/tickets/{number}?done=cc"
                               ) as r:
        page = await r.text()
    assert "stehen jetzt in Kopie" in page and button(page, number, "cc") is None
    # the next reply reaches the colleague, who now sees the ticket
    cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text", "Hallo")
    assert any(COLLEAGUE in (r["to_addrs"] + r["cc_addrs"])
               for r in rows(site.desk, Outbox.__table__) if r["kind"] == "agent_reply")
    async with browser() as colleague:
        assert (await log_in(site, COLLEAGUE, colleague))[0] == 200
        status, page = await view(site, number, colleague)
        assert status == 200 and "Drucker streikt" in page
