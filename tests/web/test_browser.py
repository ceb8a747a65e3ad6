"""The customers' pages in a real browser (Debian's chromium, headless,
driven by Playwright), against a real `maildesk serve` whose embedded
worker sends to a test SMTP sink. The links come out of the mails that
arrived there, as a customer would click them.

Screenshots are kept in $MAILDESK_TEST_ARTIFACTS (default
test-artifacts/browser in the repository) for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import REPO, Desk
from tests.daemon_helpers import ServeProcess, free_port, start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("MAILDESK_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MAILDESK_TEST_ARTIFACTS", REPO / "test-artifacts" / "browser"))
#: As the workplace's closed network wants it: no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def browser() -> Iterator[object]:
    yield from chromium()


def chromium() -> Iterator[object]:
    """Debian's chromium, headless, through Playwright (never its own
    download); in CI a missing chromium fails, on a laptop it skips."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI=true but there is no chromium at {CHROMIUM} (.ci/run installs it)")
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def daemon(desk: Desk, sink: Sink, tmp_path: Path) -> Iterator[ServeProcess]:
    web_port = free_port()
    serve = start_serve(desk.env, tmp_path, MAILDESK_RELAY__PORT=str(sink.port),
                        MAILDESK_WEB__PORT=str(web_port),
                        MAILDESK_WEB__BASE_URL=f"http://127.0.0.1:{web_port}",
                        MAILDESK_WORKER__SWEEP_SECONDS="0.5")
    try:
        yield serve
    finally:
        assert serve.stop() == 0, serve.output()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def send(serve: ServeProcess, raw: bytes, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        client.sendmail(sender, ["support@example.com"], raw)


def link(mail: EmailMessage, path: str) -> str:
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"http://127\.0\.0\.1:\d+" + re.escape(path) + r"[\w.]+", text)
    assert match, text
    return match.group(0)


def mail_with(sink: Sink, address: str, path: str, timeout: float = 20) -> EmailMessage:
    """The first mail to `address` that carries a link under `path`."""
    def find() -> EmailMessage | None:
        for mail in sink.to(address):
            body = mail.get_body(("plain",))
            if body is not None and path in body.get_content():
                return mail
        return None

    return wait_until(find, timeout)  # type: ignore[return-value]


def csat_report(desk: Desk) -> dict:
    result = desk.cli("report", "csat", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_customer_rates_the_solution_in_a_real_browser(desk: Desk, sink: Sink,
                                                       daemon: ServeProcess,
                                                       browser: object) -> None:
    send(daemon, make_mail(subject="Drucker druckt nicht", sender="Erika <erika@kunde.de>"),
         "erika@kunde.de")
    wait_until(lambda: desk.list(), 20)
    number = desk.list()[0]["number"]
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                      "--solve", "--text", "Bitte den Druckertreiber neu installieren.")
    assert result.exit_code == 0, result.output
    solution = mail_with(sink, "erika@kunde.de", "/csat/")
    url = link(solution, "/csat/")

    page = browser.new_page(locale="de-DE")  # type: ignore[attr-defined]
    response = page.goto(url)
    assert response.status == 200
    assert page.locator("h1").inner_text() == "Wie zufrieden sind Sie mit unserer Unterstützung?"
    reason = page.locator("textarea#reason")
    assert not reason.is_visible(), "the reason is asked only below 'zufrieden'"
    shot(page, "csat-1-opened")
    page.reload()  # a scanner or a second look: still nothing recorded
    assert csat_report(desk)["total"] == 0

    page.get_by_label("Zufrieden", exact=True).check()
    assert not reason.is_visible()
    page.get_by_label("Unzufrieden", exact=True).check()
    assert reason.is_visible(), "choosing 'unzufrieden' must ask for a reason"
    reason.fill("Die erste Antwort kam erst nach drei Tagen.")
    shot(page, "csat-2-reason-asked")
    page.get_by_role("button", name="Bewertung senden").click()
    page.wait_for_selector("text=Vielen Dank für Ihre Bewertung!")
    assert "„Unzufrieden“" in page.locator("[role=status]").inner_text()
    shot(page, "csat-3-thanks")

    report = csat_report(desk)
    assert report["total"] == 1
    [group] = report["groups"]
    assert group["counts"]["dissatisfied"] == 1 and group["with_reason"] == 1
    assert group["average"] == 2.0 and group["csat"] == 0.0

    tampered = url[:-1] + ("a" if url[-1] != "a" else "b")
    response = page.goto(tampered)
    assert response.status == 404
    assert "Dieser Link ist ungültig" in page.locator("h1").inner_text()
    shot(page, "csat-4-tampered")
    assert csat_report(desk)["total"] == 1
    page.close()


def test_mark_as_solved_and_confirm_the_address_on_a_phone(desk: Desk, sink: Sink,
                                                           daemon: ServeProcess,
                                                           browser: object) -> None:
    raw = b"Content-Language: en-GB\n" + make_mail(subject="Invoice question",
                                                    sender="John Smith <john@customer.example>")
    send(daemon, raw, "john@customer.example")
    registration = mail_with(sink, "john@customer.example", "/confirm/")
    assert "Please confirm your email address" in str(registration["Subject"])
    number = desk.list()[0]["number"]
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                      "--text", "Your invoice has been corrected.")
    assert result.exit_code == 0, result.output
    answer = mail_with(sink, "john@customer.example", "/solve/")

    phone = browser.new_context(viewport={"width": 375, "height": 740},  # type: ignore[attr-defined]
                                device_scale_factor=2, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(link(registration, "/confirm/"))
    assert page.locator("h1").inner_text() == "Please confirm your email address"
    shot(page, "confirm-1-phone")
    assert desk.show(number)["requester"]["confirmed"] is False
    page.get_by_role("button", name="Confirm email address").tap()
    page.wait_for_selector("text=is now confirmed")
    shot(page, "confirm-2-done")
    assert desk.show(number)["requester"]["confirmed"] is True

    page.goto(link(answer, "/solve/"))
    assert page.locator("h1").inner_text() == "Has your request been resolved?"
    assert desk.show(number)["status"] == "open"
    shot(page, "solve-1-phone")
    page.get_by_role("button", name="Yes, mark the ticket as solved").tap()
    page.wait_for_selector("text=Your ticket is now solved")
    shot(page, "solve-2-done")
    assert desk.show(number)["status"] == "solved"
    thanks = mail_with(sink, "john@customer.example", "/csat/")
    assert str(thanks["Subject"]).startswith(f"[#{number}] Solved:")
    # the survey link on the thank-you page opens the English survey
    page.get_by_role("link", name="Rate our support").tap()
    page.wait_for_selector("text=How satisfied are you with our support?")
    shot(page, "csat-phone-english")
    phone.close()
