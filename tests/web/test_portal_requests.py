""""My requests" with its filters, search, sort and the organisation's tab
(issue 16), over real HTTP on both databases, logged in by the mailed link.

What a customer may see is store/access.py's rule; these tests try the
list's own ways around it: a search that would find a ticket by the words
of an internal note, another organisation's subject typed into the search,
the organisation's tab asked for by address without the right, a stricter
organisation setting, a visitor without a session.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import update

from maildesk.deliver.sender import Sender
from maildesk.models import Outbox, PortalSessionRow, Ticket
from tests.conftest import Desk
from tests.web.test_pages import AGENT, Site
from tests.web.test_portal_login import (
    ERIKA,
    TICKET_LINK,
    log_in,
    mail_ticket,
    phone_ticket,
    rows,
)

pytestmark = pytest.mark.usefixtures("quick_answers")


def cli_ok(desk: Desk, *args: str) -> None:
    result = desk.cli(*args)
    assert result.exit_code == 0, result.output


def numbers(page: str) -> list[int]:
    """The tickets listed, in the order shown."""
    seen: list[int] = []
    for number in map(int, TICKET_LINK.findall(page)):
        if number not in seen:
            seen.append(number)
    return seen


async def listed(site: Site, query: str, client: aiohttp.ClientSession | None = None
                 ) -> tuple[int, list[int], str]:
    async with (client or site.client).get(f"http://127.0.0.1:{site.port}/portal/{query}",
                                           allow_redirects=False) as r:
        page = await r.text()
        return r.status, numbers(page), page


def opened_days_ago(desk: Desk, number: int, days: int) -> None:
    table = Ticket.__table__
    with desk.engine().begin() as connection:
        connection.execute(update(table).where(table.c.number == number).values(
            created_at=datetime.now(UTC) - timedelta(days=days)))


async def test_filters_search_and_sort_narrow_the_customers_own_list(site: Site) -> None:
    desk = site.desk
    printer = mail_ticket(desk, ERIKA, "Drucker zeigt Fehler 42")
    phone = phone_ticket(desk, ERIKA, "Rückruf wegen Lizenz")
    old = mail_ticket(desk, ERIKA, "Alte Frage zum Export")
    done = mail_ticket(desk, ERIKA, "Erledigte Bestellung")
    cli_ok(desk, "tickets", "set", str(phone), "--type", "incident")
    cli_ok(desk, "tickets", "set", str(done), "--status", "solved")
    cli_ok(desk, "tickets", "note", str(old), "--agent", AGENT, "--text",
           "Intern: Kunde zahlt verspätet, Geheimwort Zebrafink")
    opened_days_ago(desk, old, 100)
    status, page = await log_in(site, ERIKA)
    assert status == 200

    _, shown, _ = await listed(site, "")  # open ones, newest change first
    assert set(shown) == {printer, phone, old} and done not in shown
    _, shown, page = await listed(site, "?status=all")
    assert set(shown) == {printer, phone, old, done} and "Gelöst" in page

    # the text: subject, or the words of a public message (the phone call's text)
    assert (await listed(site, "?status=all&q=fehler+42"))[1] == [printer]
    assert (await listed(site, "?status=all&q=druckt+nicht"))[1] == [phone]
    # ...never an internal note's words: the search tells nothing of them
    _, shown, page = await listed(site, "?status=all&q=Zebrafink")
    assert shown == [] and "Keine Anfrage passt zu Ihrer Suche" in page
    assert "Zebrafink" in page  # only as the typed search text, kept in its field

    assert (await listed(site, "?status=all&type=incident"))[1] == [phone]
    _, shown, _ = await listed(site, "?status=all&period=90")
    assert old not in shown and printer in shown
    assert (await listed(site, "?status=all&period=365"))[1].count(old) == 1

    _, shown, page = await listed(site, "?status=all&sort=subject")
    subjects = ["Alte Frage zum Export", "Drucker zeigt Fehler 42", "Erledigte Bestellung",
                "Rückruf wegen Lizenz"]
    by_number = {old: subjects[0], printer: subjects[1], done: subjects[2], phone: subjects[3]}
    assert [by_number[n] for n in shown] == subjects
    assert 'aria-sort="ascending"' in page
    _, shown, _ = await listed(site, "?status=all&sort=subject&dir=desc")
    assert [by_number[n] for n in shown] == subjects[::-1]
    _, shown, _ = await listed(site, "?status=all&sort=number&dir=asc")
    assert shown == sorted(shown)


async def test_pages_keep_filters_and_a_silly_address_still_opens(site: Site) -> None:
    desk = site.desk
    for i in range(27):  # recorded by phone: a mail sender this busy is rate-limited
        phone_ticket(desk, ERIKA, f"Drucker {i:02d}")
    mail_ticket(desk, ERIKA, "Etwas anderes")
    assert (await log_in(site, ERIKA))[0] == 200
    status, shown, page = await listed(site, "?q=Drucker")
    assert status == 200 and len(shown) == 25 and "27 Anfragen gefunden" in page
    following = re.search(r'<a href="([^"]+)">Nächste Seite', page)
    assert following, page
    link = following.group(1).replace("&amp;", "&")
    assert "q=Drucker" in link and "page=2" in link
    _, shown, _ = await listed(site, link.removeprefix("/portal/"))
    assert len(shown) == 2
    for silly in ("?page=-1&sort=evil&dir=x&tab=organisation&period=1e9&type=%00",
                  "?q=" + "%27%22%3Cscript%3E" * 50, "?status=all&q=%25%5F%5C"):
        status, _, page = await listed(site, silly)
        assert status == 200 and "<script>" not in page


async def test_the_organisations_tab_for_a_main_contact_and_the_stricter_setting_wins(
        site: Site) -> None:
    desk = site.desk
    erika = mail_ticket(desk, ERIKA, "Erikas Drucker")
    boss_own = mail_ticket(desk, "chefin@kunde.de", "Chefin Vertrag")
    stranger = mail_ticket(desk, "fremd@anders-gmbh.de", "Fremdes Angebot Drucker")
    cli_ok(desk, "customers", "set", "chefin@kunde.de", "--role", "main_contact")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
        assert (await log_in(site, "chefin@kunde.de", boss))[0] == 200
        _, shown, page = await listed(site, "?tab=organisation&q=Drucker", boss)
        assert shown == [erika] and "Angefragt von" in page
        _, shown, _ = await listed(site, "?tab=organisation&status=all", boss)
        assert set(shown) == {erika, boss_own} and stranger not in shown
        assert (await listed(site, "?q=Drucker", boss))[1] == []  # her own tab
        # the organisation is set to "own": even the main contact sees only hers
        with desk.engine().connect() as connection:
            org = connection.execute(Ticket.__table__.select().where(
                Ticket.__table__.c.number == erika)).first().organisation_id
        cli_ok(desk, "organisations", "set", str(org), "--access", "own")
        _, shown, page = await listed(site, "?tab=organisation&status=all", boss)
        assert shown == [boss_own] and "Alle Anfragen meiner Organisation" not in page


async def test_a_visitor_without_a_session_reads_nothing(site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    for query in ("", "?status=all&q=Drucker", "?tab=organisation"):
        status, shown, page = await listed(site, query)
        assert status == 303 and shown == [] and "Drucker" not in page
    site.client.cookie_jar.update_cookies({"maildesk_portal": "A" * 43})
    status, shown, _ = await listed(site, "?status=all")
    assert status == 303 and shown == []


async def test_customers_mails_link_to_the_portal_which_asks_for_the_login(site: Site) -> None:
    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text",
           "Bitte starten Sie den Drucker neu.")
    built = {}
    for row in rows(site.desk, Outbox.__table__):
        message, _, _ = Sender(site.desk.settings, site.desk.engine()).build(row)
        built[row["kind"]] = message
    expected = f"{site.settings.web.base_url}/portal/tickets/{number}"
    for kind in ("acknowledgement", "agent_reply"):
        text = built[kind].get_body(("plain",)).get_content()
        html = built[kind].get_body(("html",)).get_content()
        assert expected in text and f'href="{expected}"' in html, kind
        assert text.rstrip().splitlines()[-1].startswith("[")  # the reference stays last
    notices = [m for k, m in built.items() if k.startswith("agent_notice")]
    assert notices and all("/portal/" not in m.get_body(("plain",)).get_content()
                           for m in notices)
    # opened by a mail scanner or anybody without a session: the login, nothing else
    async with site.client.get(f"http://127.0.0.1:{site.port}/portal/tickets/{number}",
                               allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/portal/login"
        assert "Drucker" not in await r.text()
    assert rows(site.desk, PortalSessionRow.__table__) == []
