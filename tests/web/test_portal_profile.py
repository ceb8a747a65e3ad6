"""The portal's profile page over real HTTP on both databases (issue 16):
a customer changes name, phone, job title, language and the information
recipient mark of their own row only, the mails follow the language, and
every door (no session, no CSRF token, a foreign Origin, forged ids,
another customer's session, a logged-out cookie) changes nothing.
"""

from __future__ import annotations

import re

import aiohttp
import pytest
from sqlalchemy import insert
from yarl import URL

from maildesk.actions import profile as profile_actions
from maildesk.db import session_scope
from maildesk.deliver.sender import Sender
from maildesk.models import Customer, DirectoryEvent, Unsubscribe, utcnow
from tests.conftest import Desk
from tests.web.test_pages import AGENT, Site, outbox
from tests.web.test_portal_login import ERIKA, form_token, live_sessions, log_in, mail_ticket, rows

PROFILE = "/portal/profile"
OTTO = "otto@kunde.de"

pytestmark = pytest.mark.usefixtures("quick_answers")


# -- helpers ----------------------------------------------------------------------------------


def customer(desk: Desk, email: str) -> dict:
    return next(c for c in rows(desk, Customer.__table__) if c["email"] == email)


def events(desk: Desk) -> list[dict]:
    return rows(desk, DirectoryEvent.__table__)


async def get(site: Site, client: aiohttp.ClientSession | None = None,
              path: str = PROFILE) -> tuple[int, str, str]:
    async with (client or site.client).get(f"http://127.0.0.1:{site.port}{path}",
                                           allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def post(site: Site, data: dict[str, str], client: aiohttp.ClientSession | None = None,
               **kwargs: object) -> tuple[int, str, str]:
    async with (client or site.client).post(f"http://127.0.0.1:{site.port}{PROFILE}",
                                            data=data, allow_redirects=False, **kwargs) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def token(site: Site, client: aiohttp.ClientSession | None = None) -> str:
    status, _, page = await get(site, client)
    assert status == 200, page
    return form_token(page, PROFILE)


def english(**fields: str) -> dict[str, str]:
    return {"name": "Erika Mustermann", "phone": "+49 30 1234567",
            "job_title": "Head of Purchasing", "language": "en", "info_recipient": "yes",
            **fields}


def snapshot(desk: Desk) -> tuple[list[dict], int]:
    """Every customer row (without the touched times) and the history's length."""
    customers = [{k: v for k, v in c.items() if k != "updated_at"}
                 for c in sorted(rows(desk, Customer.__table__), key=lambda c: c["id"])]
    return customers, len(events(desk))


async def logged_in(site: Site, email: str = ERIKA,
                    client: aiohttp.ClientSession | None = None) -> None:
    assert (await log_in(site, email, client))[0] == 200


# -- using it ---------------------------------------------------------------------------------


async def test_the_customer_saves_the_profile_and_the_page_and_mails_turn_english(
        site: Site) -> None:
    number = mail_ticket(site.desk, f"Erika Mustermann <{ERIKA}>", "Drucker streikt")
    await logged_in(site)
    status, _, page = await get(site)
    assert status == 200 and "<h1>Mein Profil</h1>" in page and 'lang="de"' in page
    assert ERIKA in page and "nicht ändern" in page  # shown, not a field
    assert 'name="email"' not in page and "customer_id" not in page
    assert 'aria-current="page">Mein Profil' in page
    assert "Informationsempfänger erhalten unsere Ankündigungen" in page
    assert '<option value="de" selected>' in page
    for path in ("/portal/logout", "/portal/logout-everywhere"):
        form_token(page, path)  # both buttons are there, each with its token

    status, location, _ = await post(site, {"csrf": await token(site), **english()})
    assert (status, location) == (303, PROFILE + "?saved=1")
    row = customer(site.desk, ERIKA)
    assert (row["name"], row["phone"], row["job_title"], row["language"],
            row["info_recipient"]) == ("Erika Mustermann", "+49 30 1234567",
                                       "Head of Purchasing", "en", True)
    history = {e["field"]: e for e in events(site.desk)}
    assert set(history) == {"phone", "job_title", "language", "info_recipient"}  # name as before
    assert {e["actor"] for e in history.values()} == {ERIKA}
    assert {e["subject"] for e in history.values()} == {"customer"}
    assert {e["subject_id"] for e in history.values()} == {row["id"]}
    assert (history["language"]["old"], history["language"]["new"]) == ("de", "en")
    assert (history["info_recipient"]["old"], history["info_recipient"]["new"]) == (
        "false", "true")

    status, _, page = await get(site, path=location)
    assert status == 200 and 'lang="en"' in page and "<h1>My profile</h1>" in page
    assert "Your profile has been saved." in page
    assert 'value="Head of Purchasing"' in page and '<option value="en" selected>' in page
    assert 'name="info_recipient" value="yes" checked' in page
    status, _, page = await get(site, path="/portal/")
    assert 'lang="en"' in page  # the other pages follow it too

    # the same form again changes nothing and records nothing
    assert (await post(site, {"csrf": await token(site), **english()}))[0] == 303
    assert len(events(site.desk)) == 4

    result = site.desk.cli("tickets", "reply", str(number), "--agent", AGENT, "--text",
                           "Please restart the printer.")
    assert result.exit_code == 0, result.output
    reply = next(r for r in reversed(outbox(site.desk)) if r["kind"] == "agent_reply")
    assert reply["to_addrs"] == ERIKA and reply["language"] == "en"
    message, _, _ = Sender(site.desk.settings, site.desk.engine()).build(reply)
    text = message.get_body(("plain",)).get_content()
    assert "Kind regards" in text and "Mit freundlichen" not in text


async def test_bad_input_is_shown_again_with_the_errors_and_nothing_is_saved(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    await logged_in(site)
    before = snapshot(site.desk)
    status, _, page = await post(site, {"csrf": await token(site), **english(
        name="E" * 201, phone="030 DURCHWAHL 12", job_title="Leiterin Einkauf")})
    assert status == 400
    assert 'lang="de"' in page  # still the stored language: nothing was saved
    assert 'id="error-summary"' in page and "Noch ist nichts gespeichert" in page
    assert 'href="#name"' in page and 'href="#phone"' in page and 'href="#job_title"' not in page
    assert re.search(r'id="name-error">.*Zu lang: höchstens 200 Zeichen', page)
    assert re.search(r'id="phone-error">.*nur Ziffern, Leerzeichen', page)
    assert re.search(r'<input type="text" id="name" name="name" value="E{201}"[^>]*'
                     r'aria-invalid="true" aria-describedby="name-error"', page)
    assert re.search(r'id="phone" name="phone" value="030 DURCHWAHL 12"[^>]*'
                     r'aria-describedby="phone-error phone-hint"', page)
    assert 'value="Leiterin Einkauf"' in page  # typed values kept
    assert snapshot(site.desk) == before

    status, _, page = await post(site, {"csrf": form_token(page, PROFILE),
                                        **english(language="fr")})
    assert status == 400 and "angebotenen Sprachen" in page
    assert snapshot(site.desk) == before

    result = site.desk.cli("customers", "set", ERIKA, "--language", "en")
    assert result.exit_code == 0, result.output
    status, _, page = await post(site, {"csrf": await token(site),
                                        **english(phone="+49 (30) 12/34-5 ;")})
    assert status == 400 and 'lang="en"' in page
    assert "Only digits, spaces and the characters + - / ( ) please." in page


async def test_an_unsubscribed_address_is_told_that_announcements_stay_off(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    await logged_in(site)
    status, _, page = await get(site)
    assert "früher abbestellt" not in page
    with site.desk.engine().begin() as connection:
        connection.execute(insert(Unsubscribe.__table__), {"email": ERIKA, "at": utcnow(),
                                                           "via": "link"})
    status, _, page = await get(site)
    assert status == 200 and "früher abbestellt" in page


async def test_the_page_counts_the_sessions_and_log_out_everywhere_ends_them(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    await logged_in(site)
    _, _, page = await get(site)
    assert "nur auf diesem Gerät angemeldet" in page
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone:
        await logged_in(site, ERIKA, phone)
        _, _, page = await get(site)
        assert "auf 2 Geräten oder Browsern angemeldet" in page
        async with site.client.post(
                f"http://127.0.0.1:{site.port}/portal/logout-everywhere",
                data={"csrf": form_token(page, "/portal/logout-everywhere")},
                allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/portal/login?out=1")
        assert live_sessions(site.desk) == []
        assert (await get(site, phone))[:2] == (303, "/portal/login")


# -- the doors --------------------------------------------------------------------------------


async def test_without_a_session_nothing_is_read_or_written(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    before = snapshot(site.desk)
    status, location, page = await get(site)
    assert (status, location) == (303, "/portal/login") and ERIKA not in page
    status, location, _ = await post(site, english())
    assert (status, location) == (303, "/portal/login")
    site.client.cookie_jar.update_cookies({"maildesk_portal": "A" * 43})  # made up
    assert (await get(site))[:2] == (303, "/portal/login")
    assert (await post(site, english()))[:2] == (303, "/portal/login")
    assert snapshot(site.desk) == before


async def test_a_post_without_csrf_or_from_a_foreign_origin_saves_nothing(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    await logged_in(site)
    good = await token(site)
    _, _, page = await get(site)
    before = snapshot(site.desk)
    for data, headers in ((english(), {}),
                          ({"csrf": "x" * 43, **english()}, {}),
                          ({"csrf": form_token(page, "/portal/logout"), **english()}, {}),
                          ({"csrf": good, **english()}, {"Origin": "https://evil.example"})):
        status, _, answer = await post(site, data, headers=headers)
        assert status == 403 and "wurde nichts gespeichert" in answer
    assert snapshot(site.desk) == before
    assert (await post(site, {"csrf": good, **english()}))[0] == 303  # the real one works


async def test_forged_id_fields_change_only_the_own_row_and_never_the_address(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    mail_ticket(site.desk, f"Otto Normal <{OTTO}>", "Monitor flackert")
    otto_before = customer(site.desk, OTTO)
    await logged_in(site)
    forged = {"customer_id": str(otto_before["id"]), "id": str(otto_before["id"]),
              "email": OTTO, "role": "admin", "organisation_id": "1",
              "ticket_access": "organisation"}
    status, _, _ = await post(site, {"csrf": await token(site), **english(), **forged})
    assert status == 303
    erika = customer(site.desk, ERIKA)
    assert erika["email"] == ERIKA and erika["language"] == "en"
    assert erika["role"] == "user" and erika["ticket_access"] is None
    otto = customer(site.desk, OTTO)
    assert {k: v for k, v in otto.items() if k != "updated_at"} == \
        {k: v for k, v in otto_before.items() if k != "updated_at"}
    assert {e["subject_id"] for e in events(site.desk)} == {erika["id"]}
    assert {e["field"] for e in events(site.desk)} <= {"name", "phone", "job_title",
                                                        "language", "info_recipient"}


async def test_another_customers_session_changes_only_their_own_profile(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    mail_ticket(site.desk, OTTO, "Monitor flackert")
    await logged_in(site)
    erika_before = customer(site.desk, ERIKA)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as otto:
        await logged_in(site, OTTO, otto)
        status, _, page = await get(site, otto)
        assert status == 200 and OTTO in page and ERIKA not in page
        # even with a token of Erika's browser and her id named, Otto writes his own row
        status, _, _ = await post(site, {"csrf": await token(site, otto), **english(
            name="Otto Normal", customer_id=str(erika_before["id"]), email=ERIKA)}, otto)
        assert status == 303
        assert (await post(site, {"csrf": await token(site), **english(name="Otto")},
                           otto))[0] == 403  # Erika's token is no good in Otto's browser
    assert customer(site.desk, OTTO)["name"] == "Otto Normal"
    erika = customer(site.desk, ERIKA)
    assert {k: v for k, v in erika.items() if k != "updated_at"} == \
        {k: v for k, v in erika_before.items() if k != "updated_at"}


async def test_a_logged_out_session_cookie_cannot_save(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    await logged_in(site)
    good = await token(site)
    _, _, page = await get(site)
    cookie = site.client.cookie_jar.filter_cookies(
        URL(f"http://127.0.0.1:{site.port}/portal/"))["maildesk_portal"].value
    async with site.client.post(f"http://127.0.0.1:{site.port}/portal/logout",
                                data={"csrf": form_token(page, "/portal/logout")},
                                allow_redirects=False) as r:
        assert r.status == 303
    assert live_sessions(site.desk) == []
    before = snapshot(site.desk)
    site.client.cookie_jar.update_cookies({"maildesk_portal": cookie})  # kept by an attacker
    status, location, page = await post(site, {"csrf": good, **english()})
    assert (status, location) == (303, "/portal/login")
    assert (await get(site))[:2] == (303, "/portal/login")
    assert snapshot(site.desk) == before


def test_the_action_refuses_fields_a_customer_may_not_set(desk: Desk) -> None:
    mail_ticket(desk, ERIKA, "Drucker streikt")
    erika = customer(desk, ERIKA)
    for wanted in ({"role": "admin"}, {"email": OTTO}, {"name": "Erika", "organisation_id": 1}):
        with pytest.raises(profile_actions.ProfileRefused), session_scope(desk.engine()) as session:
            profile_actions.change_profile(session, erika["id"], ERIKA, wanted)
    assert customer(desk, ERIKA) == erika and events(desk) == []
