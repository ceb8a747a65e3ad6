"""The customers' portal in a real browser (Debian's chromium, headless,
driven by Playwright) against a real `maildesk serve` whose embedded worker
sends to a test SMTP sink (issue 16): the login link is taken out of the
mail that arrived there, as a customer would click it.

Each test is one customer's journey; the module shares one daemon, one
desk (SQLite) and one browser, and every journey uses its own addresses.
Every page is checked by the in-page accessibility check
(tests/web/portal_browser_helpers.py: labels, names, alt, lang, one h1,
contrast), the login and the message form are used by keyboard, and the
phone-width pages must not scroll sideways.

Screenshots are kept in $MAILDESK_TEST_ARTIFACTS (default
test-artifacts/browser in the repository), named portal-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from maildesk.models import Attachment, Message, Outbox
from tests.conftest import Desk
from tests.daemon_helpers import (
    ServeProcess,
    free_port,
    module_desk,
    port_open,
    start_serve,
    wait_until,
)
from tests.mailfactory import make_mail
from tests.mailsink import Sink
from tests.web.portal_browser_helpers import accessibility_problems, overflow, tab_to
from tests.web.test_browser import chromium, shot
from tests.web.test_portal_login import phone_ticket, rows

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

AGENT = "agent@example.com"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LOGIN_LINK = re.compile(r"http://127\.0\.0\.1:\d+/portal/login/[A-Za-z0-9_-]+")
PHONE = {"width": 390, "height": 844}
ARTICLES = {
    "drucker/fehler-42.md": "# Drucker meldet Fehler 42\n\nMeldet der Drucker Fehler 42, "
                            "öffnen Sie die vordere Klappe und legen Sie Papier nach.\n",
    "drucker/treiber.md": "# Druckertreiber neu installieren\n\nSo installieren Sie den "
                          "Treiber neu: Systemsteuerung, Geräte, Drucker entfernen.\n",
    "rechnung.md": "# Rechnung und Zahlung\n\nRechnungen kommen monatlich per E-Mail.\n",
}


@dataclass
class Served:
    desk: Desk
    sink: Sink
    serve: ServeProcess

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.serve.web_port}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One daemon (SMTP in, web, worker sending to the sink) for the module."""
    root = tmp_path_factory.mktemp("portal-browser")
    articles = root / "articles"
    for name, text in ARTICLES.items():
        (articles / name).parent.mkdir(parents=True, exist_ok=True)
        (articles / name).write_text(text, encoding="utf-8")
    sink = Sink().start()
    try:
        with module_desk("sqlite", root) as desk:
            web_port = free_port()
            serve = start_serve(desk.env, root, MAILDESK_RELAY__PORT=str(sink.port),
                                MAILDESK_WEB__PORT=str(web_port),
                                MAILDESK_WEB__BASE_URL=f"http://127.0.0.1:{web_port}",
                                MAILDESK_WORKER__SWEEP_SECONDS="0.5",
                                MAILDESK_PORTAL__ARTICLES_DIR=str(articles))
            try:  # serve opens its SMTP port first, the web's a moment later
                wait_until(lambda: port_open(web_port), 30)
                yield Served(desk, sink, serve)
            finally:
                assert serve.stop() == 0, serve.output()
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()  # type: ignore[misc]


def new_page(browser: Browser, **options: object) -> Page:
    """A page in its own context (own cookies) that gives up waiting after
    10 s: a missing element fails fast, not after Playwright's 30 s."""
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context.new_page()


# -- helpers ----------------------------------------------------------------------------------


def mail_ticket(desk: Desk, sender: str, subject: str, body: str,
                attachments: list[tuple[str, str, bytes]] | None = None) -> int:
    code, outcome = desk.ingest(make_mail(subject=subject, sender=sender, body=body,
                                          attachments=attachments or []))
    assert code == 0 and outcome["action"] == "created", outcome
    return int(outcome["ticket"])


def cli_ok(desk: Desk, *args: str) -> None:
    result = desk.cli(*args)
    assert result.exit_code == 0, result.output


def login_links(sink: Sink, address: str) -> list[str]:
    """The login links in the mails the sink received for `address`, in order."""
    found = []
    for mail in sink.to(address):
        body = mail.get_body(("plain",))
        match = body is not None and LOGIN_LINK.search(body.get_content())
        if match:
            found.append(match.group(0))
    return found


def clean(page: Page, where: str) -> None:
    problems = accessibility_problems(page)
    assert not problems, f"{where}: " + "\n".join(problems)


def ask_for_link(served: Served, page: Page, address: str, keyboard: bool = False) -> str:
    """The login form, filled and sent; the link from the mail that arrives."""
    before = len(login_links(served.sink, address))
    page.goto(served.base + "/portal/login")
    if keyboard:
        tab_to(page, "input#email")
        page.keyboard.type(address)
        page.keyboard.press("Enter")
    else:
        page.get_by_label("E-Mail-Adresse").fill(address)
        page.get_by_role("button", name="Anmeldelink schicken").click()
    page.wait_for_selector("text=Bitte sehen Sie in Ihr Postfach")
    links = wait_until(lambda: login_links(served.sink, address)[before:], 20)
    return str(links[-1])  # type: ignore[index]


def log_in(served: Served, page: Page, address: str) -> None:
    page.goto(ask_for_link(served, page, address))
    page.get_by_role("button", name="Anmelden", exact=True).click()
    page.wait_for_selector("h1:text('Meine Anfragen')")


def listed(page: Page) -> list[int]:
    """The ticket numbers the list shows, in order."""
    links = page.locator("table a[href^='/portal/tickets/']")
    numbers: list[int] = []
    for href in links.evaluate_all("els => els.map(e => e.getAttribute('href'))"):
        number = int(href.rsplit("/", 1)[1])
        if number not in numbers:
            numbers.append(number)
    return numbers


def on_phone(browser: Browser, desktop: Page, name: str, url: str) -> None:
    """The same session on a phone-wide screen: no sideways scrolling."""
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2,
                                is_mobile=True, has_touch=True,
                                storage_state=desktop.context.storage_state())
    try:
        phone.set_default_timeout(10_000)
        page = phone.new_page()
        assert page.goto(url).status == 200
        shot(page, name)
        extra, wide = overflow(page)
        assert extra <= 0, f"{name}: {extra} px wider than the phone: {wide}"
        clean(page, name)
    finally:
        phone.close()


# -- the check itself -------------------------------------------------------------------------

BAD_PAGE = """<!doctype html><html><head><title>x</title></head><body style="background:#fff">
<h1>Eins</h1><h1>Zwei</h1>
<input id="q" name="q"><select name="s"><option>a</option></select>
<label for="t">Text</label><textarea id="t" aria-describedby="nirgends"></textarea>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<button></button><a href="/x"></a>
<p style="color:#bbb">blass</p>
</body></html>"""


def test_the_in_page_check_finds_what_it_looks_for(browser: Browser) -> None:
    page = browser.new_page()
    page.set_content(BAD_PAGE)
    problems = "\n".join(accessibility_problems(page))
    for expected in ("no lang", "2 <h1>", 'field without a label: <input id="q"',
                     "field without a label: <select", "aria-describedby names a missing id",
                     "image without alt", "link or button without a name: <button",
                     'link or button without a name: <a href="/x"', "contrast 1.9"):
        assert expected in problems, problems
    assert "field without a label: <textarea" not in problems  # label[for] counts
    page.set_content('<!doctype html><html lang="de"><head><title>x</title></head><body>'
                     '<h1>Gut</h1><label for="a">Adresse</label><input id="a">'
                     '<button aria-label="Suchen">🔍</button><img src="x.png" alt="">'
                     '</body></html>')
    assert accessibility_problems(page) == []
    page.close()


# -- the journeys -----------------------------------------------------------------------------


def test_a_customer_logs_in_from_the_mail_reads_filters_and_replies_with_files(
        served: Served, browser: Browser) -> None:
    desk, erika = served.desk, "erika@kunde.de"
    mailed = mail_ticket(desk, f"Erika Mustermann <{erika}>", "Drucker zeigt Fehler 42",
                         "Hallo,\n\nunser Drucker im Büro zeigt seit heute Fehler 42.\n",
                         [("Fehlerbild.pdf", "application/pdf", PDF)])
    phoned = phone_ticket(desk, erika, "Anruf wegen Rechnung")
    cli_ok(desk, "tickets", "reply", str(mailed), "--agent", AGENT, "--text",
           "Bitte starten Sie den Drucker einmal neu.")
    page = new_page(browser, locale="de-DE")

    # login by keyboard: Tab to the address, type it, Enter sends the form
    page.goto(served.base + "/portal/login")
    shot(page, "portal-1-login")
    clean(page, "login page")
    link = ask_for_link(served, page, erika, keyboard=True)
    clean(page, "link sent page")
    assert page.goto(link).status == 200
    assert page.locator("h1").inner_text() == "Anmelden"
    assert erika in page.locator("main").inner_text()
    shot(page, "portal-2-link")
    clean(page, "link page")
    tab_to(page, "button:Anmelden")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:text('Meine Anfragen')")
    assert "ist jetzt bestätigt" in page.locator("[role=status]").first.inner_text()

    # the mailed and the phoned ticket, both in the list
    assert set(listed(page)) == {mailed, phoned}
    main = page.locator("main").inner_text()
    assert "Drucker zeigt Fehler 42" in main and "Anruf wegen Rechnung" in main
    shot(page, "portal-3-my-requests-de")
    clean(page, "my requests")

    # search and period: only the printer
    page.get_by_label("Suche in Betreff und Nachrichten").fill("Fehler 42")
    page.get_by_label("Zeitraum (erstellt)").select_option("30")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_url(re.compile(r"q=Fehler"))
    assert listed(page) == [mailed]
    assert "1 Anfrage gefunden" in page.locator("main").inner_text()
    assert page.get_by_label("Suche in Betreff und Nachrichten").input_value() == "Fehler 42"
    shot(page, "portal-4-filtered")
    clean(page, "filtered list")
    page.get_by_role("link", name="Filter zurücksetzen").first.click()
    page.wait_for_load_state()
    assert set(listed(page)) == {mailed, phoned}
    on_phone(browser, page, "portal-11-phone-my-requests", served.base + "/portal/")

    # the ticket: the customer's mail with its file, the support's answer
    page.get_by_role("link", name="Drucker zeigt Fehler 42").click()
    page.wait_for_selector("h1:text('Drucker zeigt Fehler 42')")
    text = page.locator("main").inner_text()
    assert "seit heute Fehler 42" in text and "Bitte starten Sie den Drucker" in text
    assert page.get_by_role("link", name="Fehlerbild.pdf").count() == 1
    shot(page, "portal-5-ticket-with-file")
    clean(page, "ticket page")
    with page.expect_download() as download:
        page.get_by_role("link", name="Fehlerbild.pdf").click()
    assert Path(download.value.path()).read_bytes() == PDF

    # a reply with two files, the form used by keyboard
    before = len(rows(desk, Outbox.__table__))
    tab_to(page, "textarea#message-text")
    page.keyboard.type("Nach dem Neustart kommt Fehler 43. Foto und Protokoll anbei.")
    page.get_by_label(re.compile("Dateien anhängen")).set_input_files([
        {"name": "Foto.pdf", "mimeType": "application/pdf", "buffer": PDF},
        {"name": "Protokoll.txt", "mimeType": "text/plain", "buffer": b"10:03 Fehler 43\n"}])
    tab_to(page, "button:Nachricht senden")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Ihre Nachricht wurde hinzugefügt")
    text = page.locator("main").inner_text()
    assert text.index("Bitte starten Sie") < text.index("Fehler 43")
    assert page.get_by_role("link", name="Foto.pdf").count() == 1
    assert page.get_by_role("link", name="Protokoll.txt").count() == 1
    shot(page, "portal-6-ticket-after-reply")
    clean(page, "ticket after the reply")

    # the agents' side: one message with the two files, the agent told by mail
    last = desk.show(mailed)["messages"][-1]
    assert last["direction"] == "in" and last["from"] == erika
    assert sorted(a["filename"] for a in last["attachments"]) == ["Foto.pdf", "Protokoll.txt"]
    stored = [a for a in rows(desk, Attachment.__table__) if a["message_id"] == last["id"]]
    assert len(stored) == 2
    assert [m for m in rows(desk, Message.__table__) if m["id"] == last["id"]]
    notices = [r for r in rows(desk, Outbox.__table__)[before:]
               if r["kind"] == "agent_notice_reply"]
    assert notices and AGENT in notices[0]["to_addrs"]
    wait_until(lambda: [m for m in served.sink.to(AGENT) if f"#{mailed}" in str(m["Subject"])
                        and "Fehler 43" in m.get_body(("plain",)).get_content()], 20)
    on_phone(browser, page, "portal-12-phone-ticket", f"{served.base}/portal/tickets/{mailed}")
    page.context.close()


def test_a_main_contact_sees_a_colleagues_ticket_a_plain_colleague_does_not(
        served: Served, browser: Browser) -> None:
    desk = served.desk
    anna = mail_ticket(desk, "Anna Kolb <anna@firma-b.de>", "Angebot Wartungsvertrag",
                       "Bitte schicken Sie uns ein Angebot.\n")
    boss_own = mail_ticket(desk, "Chefin <chefin@firma-b.de>", "Lizenzen verlängern",
                           "Wir brauchen zehn Lizenzen mehr.\n")
    plain_own = mail_ticket(desk, "Kai <kai@firma-b.de>", "Passwort vergessen",
                            "Ich komme nicht mehr hinein.\n")
    foreign = mail_ticket(desk, "Otto <otto@anders-gmbh.de>", "Geheimes Angebot",
                          "Nur für uns.\n")
    cli_ok(desk, "customers", "set", "chefin@firma-b.de", "--role", "main_contact")

    page = new_page(browser, locale="de-DE")
    log_in(served, page, "chefin@firma-b.de")
    assert listed(page) == [boss_own]
    page.get_by_role("link", name="Alle Anfragen meiner Organisation").click()
    page.wait_for_selector("h1:text('Anfragen meiner Organisation')")
    assert set(listed(page)) == {anna, boss_own, plain_own} and foreign not in listed(page)
    assert "Anna Kolb" in page.locator("main").inner_text() or \
        "anna@firma-b.de" in page.locator("main").inner_text()
    shot(page, "portal-9-organisation-tab")
    clean(page, "organisation tab")
    page.get_by_role("link", name="Angebot Wartungsvertrag").click()
    page.wait_for_selector("h1:text('Angebot Wartungsvertrag')")
    assert "Bitte schicken Sie uns ein Angebot." in page.locator("main").inner_text()
    page.context.close()

    page = new_page(browser, locale="de-DE")
    log_in(served, page, "kai@firma-b.de")
    assert listed(page) == [plain_own]
    assert page.get_by_role("link", name="Alle Anfragen meiner Organisation").count() == 0
    page.goto(served.base + "/portal/?tab=organisation&status=all")
    assert anna not in listed(page) and boss_own not in listed(page)
    response = page.goto(f"{served.base}/portal/tickets/{anna}")
    assert response.status == 404
    assert "Bitte schicken Sie uns ein Angebot" not in page.locator("body").inner_text()
    clean(page, "ticket not found")

    # switch to English in the profile: the page answers in English from then on
    page.goto(served.base + "/portal/profile")
    clean(page, "profile (German)")
    page.get_by_label("Sprache").select_option("en")
    page.get_by_role("button", name="Profil speichern").click()
    page.wait_for_selector("text=My profile")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_label("Language").input_value() == "en"
    shot(page, "portal-10-profile-english")
    clean(page, "profile (English)")
    page.get_by_role("link", name="My requests").first.click()
    page.wait_for_selector("h1:text('My requests')")
    assert listed(page) == [plain_own]
    clean(page, "my requests (English)")
    page.context.close()


def test_a_new_request_through_the_form_shows_a_matching_help_article(
        served: Served, browser: Browser) -> None:
    desk, lena = served.desk, "lena@neukunde.de"
    mail_ticket(desk, f"Lena Berg <{lena}>", "Erste Frage", "Hallo, eine erste Frage.\n")
    page = new_page(browser, locale="de-DE")
    log_in(served, page, lena)
    with page.expect_navigation() as opened:
        page.get_by_role("link", name="Neue Anfrage").first.click()
    assert opened.value and opened.value.status == 200 and page.url.endswith("/portal/new")
    clean(page, "new request form")

    # typing the subject suggests the article about it, while the form stays filled
    subject = page.locator("#request-subject")
    subject.click()
    page.keyboard.type("Drucker Fehler 42")
    suggestion = page.get_by_role("link", name="Drucker meldet Fehler 42")
    suggestion.wait_for(timeout=10_000)
    assert page.get_by_role("link", name="Rechnung und Zahlung").count() == 0
    page.locator("#request-description").fill("Der Drucker im Lager zeigt Fehler 42, "
                                      "Papier ist eingelegt.")
    page.locator("input[name=request_type]").first.check()
    shot(page, "portal-7-new-request-suggestion")
    clean(page, "new request form with a suggestion")
    assert suggestion.get_attribute("href", timeout=1000).startswith("/portal/help/")

    page.get_by_role("button", name="Anfrage senden").click()
    page.wait_for_selector("text=Ihre Anfrage wurde unter der Nummer")
    assert page.locator("h1").inner_text() == "Drucker Fehler 42"
    number = int(re.search(r"/portal/tickets/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    assert "Papier ist eingelegt" in page.locator("main").inner_text()
    shot(page, "portal-8-new-ticket")
    clean(page, "the new ticket")
    shown = desk.show(number)
    assert shown["subject"] == "Drucker Fehler 42" and shown["requester"]["email"] == lena
    assert shown["channel"] == "web"
    # the confirmation the page promises arrives
    wait_until(lambda: [m for m in served.sink.to(lena) if f"#{number}" in str(m["Subject"])], 20)
    page.context.close()
