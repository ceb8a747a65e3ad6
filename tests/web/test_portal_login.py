"""The customers' portal, first slice, over real HTTP on both databases:
the passwordless login by mailed link, sessions, logging out, and "My
requests" through the one access rule (issue 16).

The link is taken from the login mail as the worker builds it (Sender),
never made up by the test.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import select, update
from yarl import URL

from maildesk.deliver.sender import Sender
from maildesk.models import Customer, Outbox, PortalLogin, PortalSessionRow
from maildesk.web import csrf
from maildesk.web.portal import auth
from tests.conftest import Desk
from tests.mailfactory import make_mail
from tests.web.test_pages import Site, _site, settings_with

ERIKA = "erika@kunde.de"
LINK = re.compile(r"https?://\S+?(/portal/login/[A-Za-z0-9_-]+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TICKET_LINK = re.compile(r'href="/portal/tickets/(\d+)"')


pytestmark = pytest.mark.usefixtures("quick_answers")


# -- helpers ----------------------------------------------------------------------------------


def mail_ticket(desk: Desk, sender: str, subject: str) -> int:
    code, outcome = desk.ingest(make_mail(subject=subject, sender=sender))
    assert code == 0 and outcome["action"] == "created", outcome
    return int(outcome["ticket"])


def phone_ticket(desk: Desk, requester: str, subject: str) -> int:
    result = desk.cli("tickets", "create", "--requester", requester, "--subject", subject,
                      "--text", "Rückruf: Drucker druckt nicht.", "--channel", "phone",
                      "--no-ack")
    assert result.exit_code == 0, result.output
    number = re.search(r"#?(\d{4,})", result.output)
    assert number, result.output
    return int(number.group(1))


def rows(desk: Desk, table: object) -> list[dict]:
    with desk.engine().connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(table))]  # type: ignore[arg-type]


def login_mails(desk: Desk) -> list[dict]:
    return [r for r in rows(desk, Outbox.__table__) if r["kind"] == "portal_login"]


def newest_link(desk: Desk) -> tuple[str, object]:
    """The path of the newest login mail's link, and the mail as the worker builds it."""
    row = login_mails(desk)[-1]
    message, recipients, number = Sender(desk.settings, desk.engine()).build(row)
    assert number is None and recipients == [row["to_addrs"]]
    text = message.get_body(("plain",)).get_content()
    found = LINK.search(text)
    assert found, text
    return found.group(1), message


async def ask_link(site: Site, email: str, client: aiohttp.ClientSession | None = None
                   ) -> tuple[int, str]:
    browser = client or site.client
    base = f"http://127.0.0.1:{site.port}"
    async with browser.get(base + "/portal/login") as r:
        page = await r.text()
        assert r.status == 200, page
    token = CSRF.search(page)
    assert token, page
    async with browser.post(base + "/portal/login",
                            data={"csrf": token.group(1), "email": email}) as r:
        return r.status, await r.text()


async def log_in(site: Site, email: str, client: aiohttp.ClientSession | None = None
                 ) -> tuple[int, str]:
    """Ask for a link, follow it from the mail, press "log in": the list page."""
    browser = client or site.client
    status, _ = await ask_link(site, email, browser)
    assert status == 200
    path, _ = newest_link(site.desk)
    base = f"http://127.0.0.1:{site.port}"
    async with browser.get(base + path) as r:
        page = await r.text()
        assert r.status == 200, page
    token = CSRF.search(page)
    assert token, page
    async with browser.post(base + path, data={"csrf": token.group(1)}) as r:
        return r.status, await r.text()


def form_token(page: str, action: str) -> str:
    """The CSRF value of the form posting to `action` (plain or multipart)."""
    found = re.search(r'<form method="post" action="' + re.escape(action)
                      + r'"(?: enctype="multipart/form-data")?>\s*'
                      r'<input type="hidden" name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def home_status(site: Site, client: aiohttp.ClientSession | None = None
                      ) -> tuple[int, str, str]:
    async with (client or site.client).get(f"http://127.0.0.1:{site.port}/portal/",
                                           allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


def live_sessions(desk: Desk) -> list[dict]:
    return [s for s in rows(desk, PortalSessionRow.__table__) if s["revoked_at"] is None]


# -- the whole login --------------------------------------------------------------------------


async def test_a_customer_logs_in_by_mail_and_sees_mail_and_phone_tickets(site: Site) -> None:
    mailed = mail_ticket(site.desk, f"Erika Mustermann <{ERIKA}>", "Drucker streikt")
    phoned = phone_ticket(site.desk, ERIKA, "Anruf wegen Rechnung")
    foreign = mail_ticket(site.desk, "Otto <otto@anders-gmbh.de>", "Geheimes Angebot")
    assert [c["confirmed"] for c in rows(site.desk, Customer.__table__)
            if c["email"] == ERIKA] == [False]

    status, location, _ = await home_status(site)
    assert (status, location) == (303, "/portal/login")

    status, answer = await ask_link(site, ERIKA)
    assert status == 200 and "Wenn die Adresse bei uns bekannt ist" in answer
    path, message = newest_link(site.desk)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"].endswith(f"{ERIKA}>") or ERIKA in message["To"]
    assert "[#" not in message["Subject"] and "Anmeldelink" in message["Subject"]
    # only hashes in the database: neither the outbox row nor the login row holds the token
    token = path.rsplit("/", 1)[1]
    (login,) = rows(site.desk, PortalLogin.__table__)
    assert login["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in login_mails(site.desk)[0]["payload"]

    base = f"http://127.0.0.1:{site.port}"
    async with site.client.get(base + path) as r:
        page = await r.text()
    assert r.status == 200 and "Anmelden" in page and "bestätigen Sie auch" in page
    async with site.client.post(base + path, data={"csrf": CSRF.search(page).group(1)},
                                allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/portal/?confirmed=1"
        cookie = next(v for v in r.headers.getall("Set-Cookie") if v.startswith("maildesk_portal="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/portal/" in cookie
    assert "Secure" not in cookie  # web.base_url is http:// here
    session_token = cookie.split(";", 1)[0].split("=", 1)[1]
    (stored,) = rows(site.desk, PortalSessionRow.__table__)
    assert stored["token_hash"] == hashlib.sha256(session_token.encode()).hexdigest()

    status, _, page = await home_status(site)
    assert status == 200 and "Meine Anfragen" in page
    assert "Drucker streikt" in page and "Anruf wegen Rechnung" in page
    assert "Geheimes Angebot" not in page and f'/portal/tickets/{foreign}"' not in page
    assert f'href="/portal/tickets/{mailed}"' in page and f'href="/portal/tickets/{phoned}"' in page
    assert "Neu" in page and "Anwenderhilfe" in page and "niedrig" in page
    async with site.client.get(base + "/portal/?confirmed=1") as r:
        assert "jetzt bestätigt" in await r.text()
    assert [c["confirmed"] for c in rows(site.desk, Customer.__table__)
            if c["email"] == ERIKA] == [True]  # the link proved the address

    # open ones by default; a solved ticket shows under "all", in the customer's words
    assert site.desk.cli("tickets", "set", str(phoned), "--status", "solved").exit_code == 0
    _, _, page = await home_status(site)
    assert "Anruf wegen Rechnung" not in page and "Drucker streikt" in page
    async with site.client.get(base + "/portal/?status=all") as r:
        page = await r.text()
    assert "Anruf wegen Rechnung" in page and "Gelöst" in page

    # logged in already: the login form sends back to the list
    async with site.client.get(base + "/portal/login", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/portal/"


async def test_the_list_is_paginated_and_in_english_for_an_english_customer(site: Site) -> None:
    for index in range(26):
        phone_ticket(site.desk, "ann@company.example", f"Question {index:02d}")
    assert site.desk.cli("customers", "set", "ann@company.example", "--language", "en",
                         "--confirmed").exit_code == 0
    status, page = await log_in(site, "ann@company.example")
    assert status == 200 and "My requests" in page and "26 requests" in page
    assert "Page 1 of 2" in page and len(set(TICKET_LINK.findall(page))) == 25
    assert "Question 25" in page and "Question 00" not in page
    _, message = newest_link(site.desk)
    assert message["Subject"].startswith("Your login link")
    async with site.client.get(f"http://127.0.0.1:{site.port}/portal/?status=open&page=2") as r:
        page = await r.text()
    assert len(set(TICKET_LINK.findall(page))) == 1 and "Question 00" in page
    assert "New" in page and "User help" in page


# -- no enumeration, limits -------------------------------------------------------------------


async def test_an_unknown_address_gets_the_identical_answer_and_no_mail(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MIN_ANSWER_SECONDS", 0.25)
    mail_ticket(site.desk, ERIKA, "Drucker")
    answers = []
    for address in (ERIKA, "niemand@kunde.de"):
        started = time.monotonic()
        answers.append(await ask_link(site, address))
        assert time.monotonic() - started >= 0.25
    assert answers[0] == answers[1]
    assert [r["to_addrs"] for r in login_mails(site.desk)] == [ERIKA]
    assert len(rows(site.desk, PortalLogin.__table__)) == 1


async def test_login_links_are_limited_per_address(site: Site,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker")
    # the CLI's logging setup stops propagation to the root logger: listen here
    logger = logging.getLogger(auth.__name__)
    logger.addHandler(caplog.handler)
    try:
        answers = {await ask_link(site, ERIKA) for _ in range(6)}
    finally:
        logger.removeHandler(caplog.handler)
    assert len(answers) == 1  # the sixth answer is the same page
    assert len(login_mails(site.desk)) == 5
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "address limit" in logged and ERIKA not in logged
    tokens = []
    for row in login_mails(site.desk):
        message, _, _ = Sender(site.desk.settings, site.desk.engine()).build(row)
        tokens.append(LINK.search(message.get_body(("plain",)).get_content()).group(1))
    assert len(set(tokens)) == 5 and not any(t.rsplit("/", 1)[1] in logged for t in tokens)


async def test_login_links_are_limited_per_client(desk: Desk) -> None:
    settings = settings_with(desk)
    settings = settings.model_copy(update={"portal": settings.portal.model_copy(
        update={"login_requests_per_client_per_hour": 3})})
    for index in range(4):
        mail_ticket(desk, f"person{index}@kunde.de", f"Frage {index}")
    async for site in _site(desk, settings):
        await ask_link(site, "unbekannt@kunde.de")  # counts too, though nothing is sent
        answers = {await ask_link(site, f"person{index}@kunde.de") for index in range(4)}
        assert len(answers) == 1
        assert [r["to_addrs"] for r in login_mails(desk)] == ["person0@kunde.de",
                                                              "person1@kunde.de"]


# -- the link ---------------------------------------------------------------------------------


async def test_opening_the_link_consumes_nothing_and_a_second_post_is_refused(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker")
    await ask_link(site, ERIKA)
    path, _ = newest_link(site.desk)
    for _ in range(3):  # mail scanners open links, more than once
        status, page = await site.get(path)
        assert status == 200 and "<form" in page
    assert [r["used_at"] for r in rows(site.desk, PortalLogin.__table__)] == [None]
    assert rows(site.desk, PortalSessionRow.__table__) == []
    token = CSRF.search(page).group(1)

    status, page = await site.post(path, {"csrf": token})
    assert status == 200 and "Meine Anfragen" in page
    status, page = await site.post(path, {"csrf": token})  # replayed
    assert status == 410 and "schon benutzt" in page and 'href="/portal/login"' in page
    status, page = await site.get(path)
    assert status == 410
    assert len(rows(site.desk, PortalSessionRow.__table__)) == 1


async def test_an_expired_link_is_refused(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker")
    await ask_link(site, ERIKA)
    path, _ = newest_link(site.desk)
    status, page = await site.get(path)
    token = CSRF.search(page).group(1)
    with site.desk.engine().begin() as connection:
        connection.execute(update(PortalLogin.__table__).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    status, page = await site.get(path)
    assert status == 410 and "abgelaufen" in page and 'href="/portal/login"' in page
    status, page = await site.post(path, {"csrf": token})
    assert status == 410
    assert rows(site.desk, PortalSessionRow.__table__) == []
    assert [r["used_at"] for r in rows(site.desk, PortalLogin.__table__)] == [None]


async def test_a_forged_link_or_cookie_gets_nowhere(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker")
    for token in ("A" * 43, "nicht-gültig!", "x"):
        status, page = await site.get(f"/portal/login/{token}")
        assert status == 404 and 'href="/portal/login"' in page
    forged = "/portal/login/" + "B" * 43
    await site.get("/portal/login")  # the browser has its CSRF cookie; the token is right
    csrf_cookie = site.client.cookie_jar.filter_cookies(
        URL(f"http://127.0.0.1:{site.port}/"))[csrf.COOKIE].value
    status, _ = await site.post(forged, {"csrf": csrf._sign(site.secret, csrf_cookie, forged)})
    assert status == 404
    site.client.cookie_jar.update_cookies({"maildesk_portal": "C" * 43})
    status, location, page = await home_status(site)
    assert (status, location) == (303, "/portal/login") and "Drucker" not in page
    assert rows(site.desk, PortalSessionRow.__table__) == []


# -- sessions ---------------------------------------------------------------------------------


async def test_a_logged_out_session_cookie_reads_nothing(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    status, page = await log_in(site, ERIKA)
    assert status == 200 and "Drucker streikt" in page
    cookie = site.client.cookie_jar.filter_cookies(
        URL(f"http://127.0.0.1:{site.port}/portal/"))["maildesk_portal"].value
    status, page = await site.post("/portal/logout", {"csrf": form_token(page, "/portal/logout")})
    assert status == 200 and "Sie sind abgemeldet" in page
    assert live_sessions(site.desk) == []
    site.client.cookie_jar.update_cookies({"maildesk_portal": cookie})  # kept by an attacker
    status, location, page = await home_status(site)
    assert (status, location) == (303, "/portal/login") and "Drucker" not in page


async def test_the_sweep_prunes_spent_links_and_ended_sessions_but_not_live_ones(
        site: Site) -> None:
    from maildesk.schedule.sweep import run_sweep

    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    status, page = await log_in(site, ERIKA)  # this browser logs out again
    assert status == 200
    await site.post("/portal/logout", {"csrf": form_token(page, "/portal/logout")})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone:
        assert (await log_in(site, ERIKA, phone))[0] == 200  # this one stays logged in
        assert len(rows(site.desk, PortalLogin.__table__)) == 2
        assert len(rows(site.desk, PortalSessionRow.__table__)) == 2
        engine, secret = site.desk.engine(), site.secret
        # within the day: nothing goes (the login limits count the last hour)
        soon = datetime.now(UTC) + timedelta(hours=20)
        assert run_sweep(engine, site.desk.settings, secret, soon).portal_pruned == 0
        later = datetime.now(UTC) + timedelta(days=2)
        report = run_sweep(engine, site.desk.settings, secret, later)
        assert report.portal_pruned == 3  # both links, the logged-out session
        assert rows(site.desk, PortalLogin.__table__) == []
        assert [s["revoked_at"] for s in rows(site.desk, PortalSessionRow.__table__)] == [None]
        assert (await home_status(site, phone))[0] == 200  # the live session still works


async def test_log_out_everywhere_ends_the_other_browsers_session(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone:
        status, page = await log_in(site, ERIKA)
        assert status == 200
        assert (await log_in(site, ERIKA, phone))[0] == 200
        # a new link followed in the logged-in browser: still one session there
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
            await ask_link(site, ERIKA, other)
        path, _ = newest_link(site.desk)
        async with phone.get(f"http://127.0.0.1:{site.port}{path}") as r:
            token = CSRF.search(await r.text()).group(1)
        async with phone.post(f"http://127.0.0.1:{site.port}{path}", data={"csrf": token}) as r:
            assert r.status == 200 and "Drucker streikt" in await r.text()
        assert len(live_sessions(site.desk)) == 2
        assert (await home_status(site, phone))[0] == 200
        _, profile = await site.get("/portal/profile")  # where the button is
        status, _ = await site.post("/portal/logout-everywhere",
                                    {"csrf": form_token(profile, "/portal/logout-everywhere")})
        assert status == 200
        assert live_sessions(site.desk) == []
        status, location, page = await home_status(site, phone)
        assert (status, location) == (303, "/portal/login") and "Drucker" not in page


async def test_posts_without_csrf_or_from_a_foreign_origin_change_nothing(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker")
    status, page = await site.get("/portal/login")
    good = CSRF.search(page).group(1)
    assert (await site.post("/portal/login", {"email": ERIKA}))[0] == 403
    assert (await site.post("/portal/login", {"email": ERIKA, "csrf": good},
                            headers={"Origin": "https://evil.example"}))[0] == 403
    assert login_mails(site.desk) == []

    status, page = await log_in(site, ERIKA)
    assert status == 200
    _, page = await site.get("/portal/profile")  # both log-out forms are on it
    for path in ("/portal/logout", "/portal/logout-everywhere"):
        token = form_token(page, path)
        assert (await site.post(path, {}))[0] == 403
        assert (await site.post(path, {"csrf": token},
                                headers={"Origin": "https://evil.example"}))[0] == 403
    assert len(live_sessions(site.desk)) == 1

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await ask_link(site, ERIKA, other)
    path, _ = newest_link(site.desk)
    status, page = await site.get(path)
    token = CSRF.search(page).group(1)
    assert (await site.post(path, {}))[0] == 403
    assert (await site.post(path, {"csrf": token},
                            headers={"Origin": "https://evil.example"}))[0] == 403
    assert [r["used_at"] is None for r in rows(site.desk, PortalLogin.__table__)] == [False, True]
    assert len(live_sessions(site.desk)) == 1


# -- who sees what ----------------------------------------------------------------------------


async def test_a_colleague_sees_only_their_own_a_main_contact_the_organisations(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Erikas Drucker")
    mail_ticket(site.desk, "kollege@kunde.de", "Kollegen Monitor")
    mail_ticket(site.desk, "chefin@kunde.de", "Chefin Vertrag")
    mail_ticket(site.desk, "fremd@anders-gmbh.de", "Fremdes Angebot")
    assert site.desk.cli("customers", "set", "chefin@kunde.de", "--role",
                         "main_contact").exit_code == 0

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as colleague:
        status, page = await log_in(site, "kollege@kunde.de", colleague)
        assert status == 200 and "Kollegen Monitor" in page
        assert "Erikas Drucker" not in page and "Chefin Vertrag" not in page
        assert "Alle Anfragen meiner Organisation" not in page  # no second tab
        async with colleague.get(f"http://127.0.0.1:{site.port}/portal/?tab=organisation") as r:
            page = await r.text()  # asking for it by address shows their own list
        assert "Kollegen Monitor" in page and "Erikas Drucker" not in page
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
        status, page = await log_in(site, "chefin@kunde.de", boss)
        assert status == 200  # the first tab: her own requests
        assert "Chefin Vertrag" in page and "Erikas Drucker" not in page
        tab = re.search(r'<a href="([^"]+)">Alle Anfragen meiner Organisation</a>', page)
        assert tab, page
        link = tab.group(1).replace("&amp;", "&")
        async with boss.get(f"http://127.0.0.1:{site.port}{link}") as r:
            page = await r.text()
        for subject in ("Erikas Drucker", "Kollegen Monitor", "Chefin Vertrag"):
            assert subject in page
        assert "Fremdes Angebot" not in page
        assert "Angefragt von" in page and "kollege@kunde.de" in page
