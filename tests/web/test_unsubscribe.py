"""/unsubscribe/<token> (RFC 8058 one-click) and /stop/<token> (a CC or
follower stops a ticket's mails): GET changes nothing, POST does, a forged
or replayed link changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from maildesk.models import Event, Participant, Unsubscribe
from maildesk.tickets import address_links
from tests.conftest import Desk
from tests.web.test_pages import AGENT, Site, _site, new_ticket, rendered, settings_with

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
async def site(desk: Desk) -> AsyncIterator[Site]:
    async for value in _site(desk, settings_with(desk)):
        yield value


def unsubscribed(site: Site) -> list[str]:
    with site.desk.engine().connect() as connection:
        return list(connection.execute(select(Unsubscribe.__table__.c.email)).scalars())


async def test_one_click_unsubscribes_once_and_get_only_asks(site: Site) -> None:
    token = address_links.unsubscribe_token(site.secret, "erika@kunde.de")
    status, page = await site.get(f"/unsubscribe/{token}")
    assert status == 200 and "erika@kunde.de" in page and "<form" in page
    assert unsubscribed(site) == []  # a scanner opening the link unsubscribes nobody
    for _ in range(2):  # idempotent
        status, page = await site.post(f"/unsubscribe/{token}", ONE_CLICK)
        assert status == 200, page
    assert unsubscribed(site) == ["erika@kunde.de"]


async def test_a_forged_unsubscribe_token_is_404_and_writes_nothing(site: Site) -> None:
    good = address_links.unsubscribe_token(site.secret, "erika@kunde.de")
    other = address_links.unsubscribe_token(b"not-our-secret", "boss@kunde.de")
    spliced = address_links.unsubscribe_token(site.secret, "boss@kunde.de").split(".")[0] \
        + "." + good.split(".")[1]
    for token in (other, spliced, "garbage"):
        status, _ = await site.post(f"/unsubscribe/{token}", ONE_CLICK)
        assert status == 404
    assert unsubscribed(site) == []


def participants(site: Site) -> dict[str, str]:
    with site.desk.engine().connect() as connection:
        return {r.email: r.role for r in connection.execute(select(Participant.__table__))}


async def test_a_cc_stops_the_mails_by_the_link_in_the_reply(site: Site) -> None:
    number = new_ticket(site.desk)
    changed = site.desk.cli("tickets", "set", str(number), "--add-cc", "kollege@kunde.de")
    assert changed.exit_code == 0, changed.output
    replied = site.desk.cli("tickets", "reply", str(number), "--agent", AGENT, "--text", "Hallo")
    assert replied.exit_code == 0, replied.output
    text = rendered(site.desk, "agent_reply")
    assert "kollege@kunde.de" in text
    links = re.findall(r"https?://\S+/stop/[\w.]+", text)
    assert len(links) == 1, text  # the CC's; the requester is no participant
    path = "/stop/" + links[0].rsplit("/", 1)[1]

    status, page = await site.get(path)
    assert status == 200 and "kollege@kunde.de" in page
    assert participants(site) == {"kollege@kunde.de": "cc"}  # GET changed nothing
    status, _ = await site.post(path, {"csrf": "forged"})
    assert status == 403 and participants(site) == {"kollege@kunde.de": "cc"}

    status, page = await site.submit(path)
    assert status == 200, page
    assert participants(site) == {}
    with site.desk.engine().connect() as connection:
        history = [(e.actor, e.field, e.old, e.new) for e in connection.execute(
            select(Event.__table__).where(Event.__table__.c.field == "cc"))]
    assert history[-1] == ("kollege@kunde.de", "cc", "kollege@kunde.de", None)

    # added again by the agent: the old link no longer removes anything
    assert site.desk.cli("tickets", "set", str(number), "--add-cc",
                         "kollege@kunde.de").exit_code == 0
    status, _ = await site.get(path)
    assert status == 404
    assert participants(site) == {"kollege@kunde.de": "cc"}


async def test_a_forged_removal_link_changes_nothing(site: Site) -> None:
    number = new_ticket(site.desk)
    assert site.desk.cli("tickets", "set", str(number), "--add-cc",
                         "kollege@kunde.de").exit_code == 0
    with site.desk.engine().connect() as connection:
        pid = connection.execute(select(Participant.__table__.c.id)).scalar_one()
    forged = address_links.removal_token(b"not-our-secret", pid, number, "kollege@kunde.de",
                                         datetime.now(UTC))
    for token in (forged, f"{pid}.zz.{'a' * 26}", "nonsense"):
        status, _ = await site.get(f"/stop/{token}")
        assert status == 404
        status, _ = await site.post(f"/stop/{token}", {"csrf": "x"})
        assert status == 404
    assert participants(site) == {"kollege@kunde.de": "cc"}
