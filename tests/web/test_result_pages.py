"""The result pages after a successful submit (issue #15): they say what
happened and no longer carry the footer of the form ("opening this page
changes nothing yet"), which is only true before the submit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Desk
from tests.web.test_pages import Site, _site, link_in, new_ticket, rendered, reply, settings_with

NOT_YET = ("Das Öffnen dieser Seite", "Opening this page")


@pytest.fixture
async def site(desk: Desk) -> AsyncIterator[Site]:
    async for value in _site(desk, settings_with(desk)):
        yield value


def path_of(site: Site, kind: str, purpose: str) -> str:
    return link_in(rendered(site.desk, kind), purpose).removeprefix(site.settings.web.base_url)


async def test_the_confirmation_result_says_confirmed_and_not_nothing_yet(site: Site) -> None:
    new_ticket(site.desk)
    path = path_of(site, "registration", "confirm")
    status, form = await site.get(path)
    assert status == 200 and "Das Öffnen dieser Seite bestätigt noch nichts." in form
    status, page = await site.submit(path)
    assert status == 200 and "ist jetzt bestätigt" in page
    assert not any(text in page for text in NOT_YET), page
    status, again = await site.get(path)
    assert "bereits bestätigt" in again and not any(text in again for text in NOT_YET)


async def test_the_solve_result_says_solved_and_not_nothing_yet(site: Site) -> None:
    number = new_ticket(site.desk)
    reply(site.desk, number)
    path = path_of(site, "agent_reply", "solve")
    status, form = await site.get(path)
    assert status == 200 and "Das Öffnen dieser Seite ändert noch nichts" in form
    status, page = await site.submit(path)
    assert status == 200 and "Ihr Ticket ist jetzt gelöst" in page
    assert not any(text in page for text in NOT_YET), page
    status, again = await site.get(path)
    assert "bereits gelöst" in again and not any(text in again for text in NOT_YET)


async def test_the_english_solve_result_has_no_nothing_yet_footer(site: Site) -> None:
    number = new_ticket(site.desk, **{"Content-Language": "en"})
    assert site.desk.show(number)["language"] == "en"
    reply(site.desk, number)
    path = path_of(site, "agent_reply", "solve")
    status, form = await site.get(path)
    assert "Opening this page does not change your ticket." in form
    status, page = await site.submit(path)
    assert status == 200 and "Your ticket is now solved" in page
    assert "Opening this page" not in page
