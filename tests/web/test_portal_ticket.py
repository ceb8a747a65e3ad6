"""The customers' portal, second slice, over real HTTP on both databases:
a ticket's page, its files and the customer's message with files, all
through the one access rule (issue 16). Logging in is the first slice's,
by the link from the mail (tests/web/test_portal_login.py).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from maildesk.models import Attachment, Message
from maildesk.web import csrf
from tests.conftest import Desk
from tests.mailfactory import make_mail
from tests.web.test_pages import AGENT, Site, _site, outbox, settings_with
from tests.web.test_portal_login import ERIKA, form_token, log_in, mail_ticket, rows

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
NOTE_FILE = "intern-kalkulation.txt"


pytestmark = pytest.mark.usefixtures("quick_answers")


# -- helpers ----------------------------------------------------------------------------------


def mail_with_file(desk: Desk, sender: str, subject: str) -> int:
    code, outcome = desk.ingest(make_mail(
        subject=subject, sender=sender, body="Hallo,\n\nder Drucker zeigt Fehler 42.\n",
        attachments=[("Fehlerbild.pdf", "application/pdf", PDF)]))
    assert code == 0 and outcome["action"] == "created", outcome
    return int(outcome["ticket"])


def cli_ok(desk: Desk, *args: str) -> None:
    result = desk.cli(*args)
    assert result.exit_code == 0, result.output


def files_of(desk: Desk, number: int) -> dict[str, dict]:
    """The ticket's files by name, with their message's direction."""
    found = {}
    for message in desk.show(number)["messages"]:
        for file in message["attachments"]:
            found[file["filename"]] = {**file, "direction": message["direction"]}
    return found


def counts(desk: Desk) -> tuple[int, int, int]:
    return (len(rows(desk, Message.__table__)), len(rows(desk, Attachment.__table__)),
            len(outbox(desk)))


async def get(site: Site, path: str, client: aiohttp.ClientSession | None = None
              ) -> tuple[int, str, aiohttp.ClientResponse, bytes]:
    async with (client or site.client).get(f"http://127.0.0.1:{site.port}{path}",
                                           allow_redirects=False) as r:
        body = await r.read()
        return r.status, r.headers.get("Location", ""), r, body


async def page(site: Site, number: int, client: aiohttp.ClientSession | None = None
               ) -> tuple[int, str]:
    status, _, _, body = await get(site, f"/portal/tickets/{number}", client)
    return status, body.decode()


def message_form(files: list[tuple[str, str, bytes]], text: str, token: str | None
                 ) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if token is not None:
        form.add_field("csrf", token)
    form.add_field("text", text)
    for name, content_type, data in files:
        form.add_field("files", data, filename=name, content_type=content_type)
    return form


async def post_message(site: Site, number: int, form: aiohttp.FormData,
                       **kwargs: object) -> tuple[int, str, str]:
    async with site.client.post(f"http://127.0.0.1:{site.port}/portal/tickets/{number}/messages",
                                data=form, allow_redirects=False, **kwargs) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


def signed(site: Site, path: str) -> str:
    """The CSRF value for `path` with this browser's cookie: what an
    attacker who has a page of ours gets at best."""
    cookie = site.client.cookie_jar.filter_cookies(
        URL(f"http://127.0.0.1:{site.port}/"))[csrf.COOKIE].value
    return csrf._sign(site.secret, cookie, path)


# -- reading ----------------------------------------------------------------------------------


async def test_the_requester_reads_the_reply_and_the_files_but_no_internal_note(
        site: Site, tmp_path: Path) -> None:
    number = mail_with_file(site.desk, f"Erika Mustermann <{ERIKA}>", "Drucker streikt")
    cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text",
           "Bitte starten Sie den Drucker neu.")
    secret_file = tmp_path / NOTE_FILE
    secret_file.write_bytes(b"Marge 40 %\n")
    cli_ok(site.desk, "tickets", "note", str(number), "--agent", AGENT, "--text",
           "Interne Notiz: Kunde hat keinen Wartungsvertrag.", "--attach", str(secret_file))
    cli_ok(site.desk, "tickets", "set", str(number), "--planned-version", "5.2",
           "--dev-item", "DEV-77")
    assert (await log_in(site, ERIKA))[0] == 200

    status, text = await page(site, number)
    assert status == 200, text
    assert "Drucker streikt" in text and f"#{number}" in text
    assert "der Drucker zeigt Fehler 42." in text
    assert "Bitte starten Sie den Drucker neu." in text
    assert text.index("Fehler 42") < text.index("Bitte starten Sie")  # in order
    assert "Interne Notiz" not in text and "Wartungsvertrag" not in text
    assert NOTE_FILE not in text
    assert "Geplant für Version" in text and "5.2" in text and "DEV-77" in text
    assert "Status" in text and "Anwenderhilfe" in text and "Priorität" in text
    assert '<label class="field" for="message-text">' in text and "<script" not in text

    found = files_of(site.desk, number)
    mine, secret = found["Fehlerbild.pdf"], found[NOTE_FILE]
    assert secret["direction"] == "internal"
    assert f'href="/portal/attachments/{mine["id"]}"' in text
    status, _, response, body = await get(site, f"/portal/attachments/{mine['id']}")
    assert status == 200 and body == PDF
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox")

    # a file of an internal note, and an id that does not exist: the same 404
    status, _, _, note_body = await get(site, f"/portal/attachments/{secret['id']}")
    assert status == 404 and b"Marge" not in note_body
    status, _, _, missing_body = await get(site, "/portal/attachments/999999")
    assert status == 404 and note_body == missing_body
    for junk in ("abc", "1" * 30):
        assert (await get(site, f"/portal/attachments/{junk}"))[0] == 404


async def test_who_may_see_a_ticket_and_no_existence_leak(site: Site) -> None:
    erikas = mail_with_file(site.desk, ERIKA, "Erikas Drucker")
    foreign = mail_with_file(site.desk, "otto@anders-gmbh.de", "Geheimes Angebot")
    mail_ticket(site.desk, "kollege@kunde.de", "Kollegen Monitor")
    mail_ticket(site.desk, "chefin@kunde.de", "Chefin Vertrag")
    cli_ok(site.desk, "customers", "set", "chefin@kunde.de", "--role", "main_contact",
           "--language", "en")
    foreign_file = files_of(site.desk, foreign)["Fehlerbild.pdf"]["id"]

    # logged out: to the login, nothing shown
    for path in (f"/portal/tickets/{erikas}", f"/portal/attachments/{foreign_file}"):
        status, location, _, body = await get(site, path)
        assert (status, location) == (303, "/portal/login") and b"Drucker" not in body

    assert (await log_in(site, ERIKA))[0] == 200
    status, not_hers = await page(site, foreign)
    assert status == 404 and "Geheimes Angebot" not in not_hers
    status, nowhere = await page(site, 999999)
    assert status == 404 and nowhere == not_hers
    assert str(foreign) not in not_hers
    status, _, _, body = await get(site, f"/portal/attachments/{foreign_file}")
    assert status == 404 and body.decode() == not_hers
    assert (await page(site, erikas))[0] == 200

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as colleague:
        assert (await log_in(site, "kollege@kunde.de", colleague))[0] == 200
        status, text = await page(site, erikas, colleague)
        assert status == 404 and "Erikas Drucker" not in text
        erikas_file = files_of(site.desk, erikas)["Fehlerbild.pdf"]["id"]
        assert (await get(site, f"/portal/attachments/{erikas_file}", colleague))[0] == 404
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
        assert (await log_in(site, "chefin@kunde.de", boss))[0] == 200
        status, text = await page(site, erikas, boss)
        assert status == 200 and "Erikas Drucker" in text
        assert "Request type" in text and "User help" in text and "Add a message" in text
        assert (await page(site, foreign, boss))[0] == 404


# -- writing ----------------------------------------------------------------------------------


async def test_a_message_with_two_files_reopens_a_solved_ticket_and_tells_the_agent(
        site: Site) -> None:
    number = mail_ticket(site.desk, f"Erika Mustermann <{ERIKA}>", "Drucker streikt")
    cli_ok(site.desk, "tickets", "reply", str(number), "--agent", AGENT, "--text",
           "Bitte starten Sie den Drucker neu.", "--solve")
    assert site.desk.show(number)["status"] == "solved"
    assert (await log_in(site, ERIKA))[0] == 200
    status, text = await page(site, number)
    assert status == 200 and "Gelöst" in text
    path = f"/portal/tickets/{number}/messages"
    before = len(outbox(site.desk))

    files = [("Foto.pdf", "application/pdf", PDF), ("Protokoll.txt", "text/plain",
                                                     b"Fehler 42 um 10:03\n")]
    status, location, _ = await post_message(site, number, message_form(
        files, "Leider druckt er nach dem Neustart immer noch nicht.", form_token(text, path)))
    assert (status, location) == (303, f"/portal/tickets/{number}?sent=1")

    status, text = await page(site, number)
    assert status == 200 and "Ihre Nachricht wurde hinzugefügt" not in text
    status, _, _, body = await get(site, location)
    text = body.decode()
    assert "Ihre Nachricht wurde hinzugefügt" in text
    assert "immer noch nicht" in text and "Foto.pdf" in text and "Protokoll.txt" in text
    assert text.index("Bitte starten Sie") < text.index("immer noch nicht")
    assert "Offen" in text

    shown = site.desk.show(number)
    assert shown["status"] == "open"
    last = shown["messages"][-1]
    assert last["direction"] == "in" and last["from"] == ERIKA
    assert [a["filename"] for a in last["attachments"]] == ["Foto.pdf", "Protokoll.txt"]
    assert any(e["field"] == "reopened" for e in shown["events"])
    new = outbox(site.desk)[before:]
    kinds = {row["kind"] for row in new}
    assert "agent_notice_reply" in kinds and "reopened" in kinds
    notice = next(row for row in new if row["kind"] == "agent_notice_reply")
    assert AGENT in notice["to_addrs"]
    assert {row["id"] for row in new} <= set(site.dispatched)
    for file in last["attachments"]:  # stored like a mail's: the customer gets them back
        status, _, _, data = await get(site, f"/portal/attachments/{file['id']}")
        assert status == 200 and data == dict((n, d) for n, _, d in files)[file["filename"]]

    # an open ticket stays open; an empty message is refused, nothing written
    written = counts(site.desk)
    status, _, text = await post_message(site, number, message_form(
        [], "   ", form_token(text, path)))
    assert status == 400 and "Bitte schreiben Sie eine Nachricht" in text
    assert counts(site.desk) == written


async def test_a_closed_ticket_takes_no_message_and_says_to_open_a_new_request(
        site: Site) -> None:
    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    assert (await log_in(site, ERIKA))[0] == 200
    _, text = await page(site, number)
    token = form_token(text, f"/portal/tickets/{number}/messages")
    cli_ok(site.desk, "tickets", "set", str(number), "--status", "closed")
    written = counts(site.desk)
    status, _, answer = await post_message(site, number, message_form(
        [("a.txt", "text/plain", b"x")], "Noch eine Frage", token))
    assert status == 409 and "neue Anfrage" in answer
    assert counts(site.desk) == written and site.desk.show(number)["status"] == "closed"
    _, text = await page(site, number)
    assert "neue Anfrage" in text and 'name="text"' not in text


async def test_a_message_without_csrf_or_from_a_foreign_origin_writes_nothing(
        site: Site) -> None:
    number = mail_ticket(site.desk, ERIKA, "Drucker streikt")
    assert (await log_in(site, ERIKA))[0] == 200
    _, text = await page(site, number)
    token = form_token(text, f"/portal/tickets/{number}/messages")
    files = [("a.txt", "text/plain", b"Hallo")]
    written = counts(site.desk)
    for form, headers in (
            (message_form(files, "ohne Token", None), {}),
            (message_form(files, "falsches Token", "x" * 43), {}),
            (message_form(files, "fremde Seite", token), {"Origin": "https://evil.example"})):
        status, _, answer = await post_message(site, number, form, headers=headers)
        assert status == 403 and "nichts gespeichert" in answer
    async with site.client.post(f"http://127.0.0.1:{site.port}/portal/tickets/{number}/messages",
                                data={"text": "ohne Token"}, allow_redirects=False) as r:
        assert r.status == 403
    assert counts(site.desk) == written
    # the token of another page does not do either
    other = form_token(text, "/portal/logout")
    assert (await post_message(site, number, message_form(files, "x", other)))[0] == 403
    assert counts(site.desk) == written


async def test_a_message_to_another_customers_ticket_is_a_404_and_writes_nothing(
        site: Site) -> None:
    foreign = mail_ticket(site.desk, "otto@anders-gmbh.de", "Geheimes Angebot")
    colleagues = mail_ticket(site.desk, "kollege@kunde.de", "Kollegen Monitor")
    mail_ticket(site.desk, ERIKA, "Drucker streikt")
    assert (await log_in(site, ERIKA))[0] == 200
    written = counts(site.desk)
    for number in (foreign, colleagues, 999999):
        path = f"/portal/tickets/{number}/messages"
        status, _, answer = await post_message(site, number, message_form(
            [("a.txt", "text/plain", b"Hallo")], "Ich schreibe mit", signed(site, path)))
        assert status == 404 and "Nicht gefunden" in answer
    assert counts(site.desk) == written
    for number in (foreign, colleagues):
        assert len(site.desk.show(number)["messages"]) == 1


async def test_an_oversized_file_is_refused_and_nothing_is_written(desk: Desk) -> None:
    settings = settings_with(desk)
    settings = settings.model_copy(update={"limits": settings.limits.model_copy(
        update={"max_attachment_bytes": 1000})})
    number = mail_ticket(desk, ERIKA, "Drucker streikt")
    async for site in _site(desk, settings):
        assert (await log_in(site, ERIKA))[0] == 200
        _, text = await page(site, number)
        token = form_token(text, f"/portal/tickets/{number}/messages")
        written = counts(desk)
        status, _, answer = await post_message(site, number, message_form(
            [("klein.txt", "text/plain", b"ok"), ("gross.bin", "application/octet-stream",
                                                  b"x" * 5000)], "Zwei Dateien", token))
        assert status == 413 and "gross.bin" in answer and "zu groß" in answer
        assert counts(desk) == written
