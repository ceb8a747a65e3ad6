"""The portal's "New request" form over real HTTP on both databases (issue 16)."""

from __future__ import annotations

import aiohttp
import pytest

from maildesk.models import Customer, Outbox, Participant, Ticket
from tests.web.test_pages import Site
from tests.web.test_portal_login import ERIKA, form_token, log_in, mail_ticket, rows

pytestmark = pytest.mark.usefixtures("quick_answers")
PATH = "/portal/new"


def request_form(token: str | None, form_id: str, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if token is not None:
        form.add_field("csrf", token)
    form.add_field("form_id", form_id)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("files", b"Fehler 42\n", filename="log.txt", content_type="text/plain")
    return form


async def post(site: Site, form: aiohttp.FormData, **kwargs: object) -> tuple[int, str, str]:
    async with site.client.post(f"http://127.0.0.1:{site.port}{PATH}", data=form,
                                allow_redirects=False, **kwargs) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def test_a_customer_opens_a_request_once_and_a_logged_out_visitor_cannot(
        site: Site) -> None:
    mail_ticket(site.desk, ERIKA, "Erste Anfrage")
    async with site.client.get(f"http://127.0.0.1:{site.port}{PATH}",
                               allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (303, "/portal/login")
    assert (await log_in(site, ERIKA))[0] == 200
    status, page = await site.get(PATH)
    assert status == 200 and "Neue Anfrage" in page and "Anwenderhilfe" in page
    assert "Priorität hoch" in page
    token = form_token(page, PATH)
    form_id = page.split('name="form_id" value="')[1].split('"')[0]
    before = len(rows(site.desk, Ticket.__table__))

    status, _, answer = await post(site, request_form(None, form_id, subject="x",
                                                      description="y", request_type="urgent"))
    assert status == 403
    status, _, answer = await post(site, request_form(token, form_id, subject="",
                                                      description="Text", request_type="urgent"))
    assert status == 400 and "Bitte geben Sie einen Betreff ein." in answer
    assert 'aria-describedby="subject-error"' in answer and "erneut aus" in answer
    assert len(rows(site.desk, Ticket.__table__)) == before

    fields = {"subject": "Server steht", "description": "Nichts geht mehr.",
              "request_type": "urgent"}
    status, location, _ = await post(site, request_form(token, form_id, **fields))
    assert status == 303 and location.endswith("?created=1")
    status, again, _ = await post(site, request_form(token, form_id, **fields))
    assert (status, again) == (303, location)
    tickets = rows(site.desk, Ticket.__table__)
    assert len(tickets) == before + 1
    new = tickets[-1]
    assert (new["channel"], new["priority"], new["request_type"]) == ("web", "high", "urgent")
    kinds = [r["kind"] for r in rows(site.desk, Outbox.__table__) if r["ticket_id"] == new["id"]]
    assert "acknowledgement" in kinds and "agent_notice_new" in kinds
    shown = site.desk.show(new["number"])
    assert [a["filename"] for a in shown["messages"][0]["attachments"]] == ["log.txt"]
    status, text = await site.get(location)
    assert status == 200 and "aufgenommen" in text
    _, home = await site.get("/portal/")
    assert "Server steht" in home


async def test_cc_only_of_colleagues_and_no_request_from_a_foreign_site(site: Site) -> None:
    desk = site.desk
    mail_ticket(desk, ERIKA, "Erste Anfrage")
    mail_ticket(desk, "kollege@kunde.de", "Monitor")
    mail_ticket(desk, "fremd@anders-gmbh.de", "Angebot")
    for who in ("kollege@kunde.de", "fremd@anders-gmbh.de"):
        assert desk.cli("customers", "set", who, "--confirmed").exit_code == 0
    ids = {c["email"]: c["id"] for c in rows(desk, Customer.__table__)}
    assert desk.cli("customers", "set", ERIKA, "--language", "en").exit_code == 0
    assert (await log_in(site, ERIKA))[0] == 200
    status, page = await site.get(PATH)
    assert status == 200 and "New request" in page
    assert "kollege@kunde.de" in page and "fremd@anders-gmbh.de" not in page
    token = form_token(page, PATH)
    before = len(rows(desk, Ticket.__table__))

    def form(cc: int, form_id: str) -> aiohttp.FormData:
        data = request_form(token, form_id, subject="Drucker", description="Fehler 42",
                            request_type="incident")
        data.add_field("cc", str(cc))
        return data

    # the form sent from another site: nothing
    status, _, _ = await post(site, form(ids["kollege@kunde.de"], "f1"),
                              headers={"Origin": "https://evil.example"})
    assert status == 403
    # a forged CC id of another organisation's customer: refused, nothing made
    status, _, answer = await post(site, form(ids["fremd@anders-gmbh.de"], "f2"))
    assert status == 400 and len(rows(desk, Ticket.__table__)) == before
    assert "fremd@anders-gmbh.de" not in answer
    assert rows(desk, Participant.__table__) == []
    # a colleague: in CC of the new ticket
    status, location, _ = await post(site, form(ids["kollege@kunde.de"], "f3"))
    assert status == 303, location
    new = rows(desk, Ticket.__table__)[-1]
    assert len(rows(desk, Ticket.__table__)) == before + 1
    assert [(p["ticket_id"], p["email"], p["role"]) for p in rows(desk, Participant.__table__)
            ] == [(new["id"], "kollege@kunde.de", "cc")]
