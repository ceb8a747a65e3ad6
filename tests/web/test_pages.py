"""The customers' pages over real HTTP, on both databases: the survey, "mark
as solved" and the registration confirmation (SPEC §7, §8; seed 001).

The web application runs in-process on a free port (the same `start_web`
that `maildesk serve` calls); mails come in through `maildesk ingest` and
the links are the ones the worker renders into the mails.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import aiohttp
import pytest
from sqlalchemy import select

from maildesk.actions import customer as customer_actions
from maildesk.config import Settings
from maildesk.deliver.sender import Sender
from maildesk.mail import tokens
from maildesk.models import CsatRating, Customer, Outbox
from maildesk.secret import load_secret
from maildesk.tickets import links
from maildesk.web import server as web_server
from maildesk.web.metrics import DaemonMetrics, query_database
from tests.conftest import Desk
from tests.mailfactory import make_mail

AGENT = "agent@example.com"


@dataclass
class Site:
    desk: Desk
    settings: Settings
    port: int
    client: aiohttp.ClientSession
    dispatched: list[int] = field(default_factory=list)

    @property
    def secret(self) -> bytes:
        return load_secret(self.settings)

    def path(self, purpose: str, subject: int, issued: datetime | None = None,
             days: int = 30) -> str:
        return links.PURPOSES[purpose] + links.make_token(
            self.secret, purpose, subject, issued or datetime.now(UTC), days)

    async def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        async with self.client.get(f"http://127.0.0.1:{self.port}{path}", **kwargs) as r:
            return r.status, await r.text()

    async def post(self, path: str, data: dict[str, str], **kwargs: object) -> tuple[int, str]:
        async with self.client.post(f"http://127.0.0.1:{self.port}{path}", data=data,
                                    **kwargs) as r:
            return r.status, await r.text()

    async def submit(self, path: str, **fields: str) -> tuple[int, str]:
        """What a browser does: open the page, send its form back."""
        status, page = await self.get(path)
        assert status == 200, page
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token, page
        return await self.post(path, {"csrf": token.group(1), **fields})


def settings_with(desk: Desk, **web: object) -> Settings:
    return desk.settings.model_copy(update={
        "web": desk.settings.web.model_copy(update={"port": 0, **web})})


async def _site(desk: Desk, settings: Settings) -> AsyncIterator[Site]:
    dispatched: list[int] = []
    daemon = SimpleNamespace(settings=settings, engine=desk.engine(), listeners=[], pollers=[],
                             dispatch=dispatched.extend, metrics=DaemonMetrics(lambda: []))
    runner = await web_server.start_web(daemon.settings, daemon.engine, daemon.metrics,
                                        daemon.dispatch)
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        try:
            yield Site(desk, settings, runner.addresses[0][1], client, dispatched)
        finally:
            await runner.cleanup()
            daemon.engine.dispose()


def new_ticket(desk: Desk, sender: str = "Erika Mustermann <erika@kunde.de>",
               **headers: str) -> int:
    # Written in front: EmailMessage.set_content drops Content-* headers.
    raw = "".join(f"{name}: {value}\n" for name, value in headers.items()).encode()
    code, outcome = desk.ingest(raw + make_mail(sender=sender))
    assert code == 0 and outcome["action"] == "created", outcome
    return int(outcome["ticket"])


def reply(desk: Desk, number: int, *, solve: bool = False) -> None:
    args = ["tickets", "reply", str(number), "--agent", AGENT, "--text",
            "Bitte starten Sie den Drucker neu."]
    result = desk.cli(*args, *(["--solve"] if solve else []))
    assert result.exit_code == 0, result.output


def outbox(desk: Desk) -> list[dict]:
    with desk.engine().connect() as connection:
        return [dict(r._mapping) for r in connection.execute(
            select(Outbox.__table__).order_by(Outbox.__table__.c.id))]


def ratings(desk: Desk) -> list[dict]:
    with desk.engine().connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(CsatRating.__table__))]


def rendered(desk: Desk, kind: str) -> str:
    """The text part of the newest outbox mail of `kind`, as the worker builds it."""
    row = next(r for r in reversed(outbox(desk)) if r["kind"] == kind)
    message, _, _ = Sender(desk.settings, desk.engine()).build(row)
    return message.get_body(("plain",)).get_content()


def link_in(text: str, purpose: str) -> str:
    match = re.search(r"https?://\S+" + re.escape(links.PURPOSES[purpose]) + r"[\w.]+", text)
    assert match, text
    return match.group(0)


# -- the survey ------------------------------------------------------------------------------


async def test_solution_mail_carries_a_signed_survey_link_under_the_signature(
        site: Site) -> None:
    number = new_ticket(site.desk)
    reply(site.desk, number, solve=True)
    text = rendered(site.desk, "solution")
    url = link_in(text, "csat")
    assert url.startswith(site.settings.web.base_url + "/csat/")
    assert text.index("Ihr Support-Team") < text.index(url), "link must follow the signature"
    target = links.verify(site.secret, "csat", url.rsplit("/", 1)[1], datetime.now(UTC))
    assert target.subject == number
    # an ordinary agent reply carries no survey, but the "solved" link
    reply(site.desk, new_ticket(site.desk, "kai@kunde.de"))
    plain = rendered(site.desk, "agent_reply")
    assert "/csat/" not in plain and "/solve/" in plain


async def test_opening_the_survey_records_nothing(site: Site) -> None:
    number = new_ticket(site.desk)
    path = site.path("csat", number)
    for _ in range(3):  # a mail scanner opens every link, more than once
        status, page = await site.get(path)
        assert status == 200
    assert "Wie zufrieden sind Sie" in page and "Unzufrieden" in page
    assert ratings(site.desk) == []
    events = site.desk.show(number)["events"]
    assert not [e for e in events if e["field"] == "csat"]


async def test_a_rating_is_recorded_once_and_can_be_changed_for_a_while(site: Site) -> None:
    number = new_ticket(site.desk)
    path = site.path("csat", number)
    status, page = await site.submit(path, score="2", reason="Zu langsam.\r\nLeider.")
    assert status == 200 and "Vielen Dank" in page and "„Unzufrieden“" in page
    [row] = ratings(site.desk)
    assert (row["score"], row["reason"], row["agent_email"]) == (2, "Zu langsam.\nLeider.", None)
    status, page = await site.submit(path, score="5", reason="ignored above 'zufrieden'")
    assert status == 200 and "geändert" in page
    [row] = ratings(site.desk)
    assert (row["score"], row["reason"], row["changes"]) == (5, "", 1)
    fields = [(e["field"], e["old"], e["new"]) for e in site.desk.show(number)["events"]
              if e["field"] == "csat"]
    assert fields == [("csat", None, "2 (dissatisfied): Zu langsam.\nLeider."),
                      ("csat", "2 (dissatisfied)", "5 (very_satisfied)")]


async def test_after_the_change_window_a_rating_stays(desk: Desk) -> None:
    async for site in _site(desk, settings_with(desk, csat_change_days=0)):
        number = new_ticket(desk)
        path = site.path("csat", number)
        token = re.search(r'name="csrf" value="([^"]+)"', (await site.get(path))[1])
        assert token
        assert (await site.post(path, {"csrf": token.group(1), "score": "4"}))[0] == 200
        status, page = await site.get(path)
        assert status == 200 and "nicht mehr geändert" in page and "<form" not in page
        status, page = await site.post(path, {"csrf": token.group(1), "score": "1"})
        assert status == 409 and "nicht mehr geändert" in page
        assert [r["score"] for r in ratings(desk)] == [4]


async def test_a_post_without_the_forms_token_or_from_elsewhere_is_refused(site: Site) -> None:
    number = new_ticket(site.desk)
    path = site.path("csat", number)
    status, page = await site.post(path, {"score": "1"})  # no cookie, no token
    assert status == 403 and "nichts gespeichert" in page
    status, _ = await site.get(path)  # now the browser has the cookie
    status, _ = await site.post(path, {"score": "1", "csrf": "forged"})
    assert status == 403
    page_token = re.search(r'name="csrf" value="([^"]+)"', (await site.get(path))[1])
    assert page_token
    status, _ = await site.post(path, {"score": "1", "csrf": page_token.group(1)},
                                headers={"Origin": "https://evil.example"})
    assert status == 403
    assert ratings(site.desk) == []


async def test_no_score_asks_again_and_keeps_the_reason(site: Site) -> None:
    number = new_ticket(site.desk)
    status, page = await site.submit(site.path("csat", number), reason="Mein Text")
    assert status == 400 and "Bitte wählen Sie" in page and "Mein Text" in page
    assert ratings(site.desk) == []


@pytest.mark.parametrize("purpose", ["csat", "solve", "confirm"])
async def test_tampered_and_expired_links_get_a_clear_page_and_store_nothing(
        site: Site, purpose: str) -> None:
    number = new_ticket(site.desk)
    subject = number if purpose != "confirm" else 1
    good = site.path(purpose, subject)
    other = site.path(purpose, subject + 1)
    tampered = good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]  # another's signature
    forged_number = good.replace(f"/{subject}.", f"/{subject + 1}.")
    wrong_purpose = links.PURPOSES[purpose] + site.path(
        "solve" if purpose == "csat" else "csat", subject).rsplit("/", 1)[1]
    for path in (tampered, forged_number, wrong_purpose, links.PURPOSES[purpose] + "garbage"):
        for method in (site.get, lambda p: site.post(p, {"score": "1", "csrf": "x"})):
            status, page = await method(path)
            assert status == 404, path
            assert "Link ist ungültig" in page or "link is not valid" in page
    old = datetime.now(UTC) - timedelta(days=40)
    status, page = await site.get(site.path(purpose, subject, issued=old, days=30))
    assert status == 410 and "abgelaufen" in page
    assert ratings(site.desk) == []
    detail = site.desk.show(number)
    assert detail["status"] == "new" and detail["requester"]["confirmed"] is False


async def test_pages_speak_the_customers_language(site: Site) -> None:
    german = new_ticket(site.desk)
    english = new_ticket(site.desk, "John Smith <john@customer.example>",
                         **{"Content-Language": "en-GB"})
    status, page = await site.get(site.path("csat", english))
    assert status == 200 and '<html lang="en">' in page
    assert "How satisfied are you" in page and "Very dissatisfied" in page
    assert "Wie zufrieden" not in page
    status, page = await site.get(site.path("csat", german))
    assert '<html lang="de">' in page and "Sehr unzufrieden" in page
    # the mails follow the same language
    reply(site.desk, english, solve=True)
    assert "How satisfied are you with our support?" in rendered(site.desk, "solution")


async def test_pages_carry_the_security_headers_and_no_external_assets(site: Site) -> None:
    number = new_ticket(site.desk)
    async with site.client.get(f"http://127.0.0.1:{site.port}{site.path('csat', number)}") as r:
        page = await r.text()
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Referrer-Policy"] == "no-referrer"
        cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "<script" not in page and not re.search(r'(src|href)="https?://', page)
    assert 'name="viewport"' in page


# -- mark as solved --------------------------------------------------------------------------


async def test_mark_as_solved_needs_the_confirming_submit(site: Site) -> None:
    number = new_ticket(site.desk)
    reply(site.desk, number)
    url = link_in(rendered(site.desk, "agent_reply"), "solve")
    path = url.removeprefix(site.settings.web.base_url)
    status, page = await site.get(path)
    assert status == 200 and "Ist Ihr Anliegen gelöst?" in page
    assert site.desk.show(number)["status"] == "open"
    before = len(outbox(site.desk))
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    status, page = await site.post(path, {"csrf": token.group(1)})
    assert status == 200 and "Ihr Ticket ist jetzt gelöst" in page and "/csat/" in page
    detail = site.desk.show(number)
    assert detail["status"] == "solved" and detail["solved_at"]
    assert [(e["actor"], e["old"], e["new"]) for e in detail["events"]
            if e["field"] == "status"][-1] == ("erika@kunde.de", "open", "solved")
    new_rows = outbox(site.desk)[before:]
    assert [(r["kind"], r["to_addrs"]) for r in new_rows] == [
        ("solved_by_customer", "erika@kunde.de"), ("agent_notice_solved", AGENT)]
    assert site.dispatched == [r["id"] for r in new_rows]
    assert "/csat/" in rendered(site.desk, "solved_by_customer")
    # the page now says so; a second submit (double click) changes and sends nothing
    status, page = await site.get(path)
    assert "bereits gelöst" in page and "<form" not in page
    status, page = await site.post(path, {"csrf": token.group(1)})
    assert status == 200 and "bereits gelöst" in page
    assert len(outbox(site.desk)) == before + 2


async def test_a_closed_ticket_cannot_be_marked_solved(site: Site) -> None:
    number = new_ticket(site.desk)
    assert site.desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    path = site.path("solve", number)
    status, page = await site.get(path)
    assert status == 200 and "bereits geschlossen" in page and "<form" not in page
    status, page = await site.post(path, {"csrf": "x"})
    assert site.desk.show(number)["status"] == "closed"


# -- registration confirmation ---------------------------------------------------------------


async def test_a_new_customer_confirms_the_address_by_the_mailed_link(site: Site) -> None:
    first = new_ticket(site.desk)
    kinds = [r["kind"] for r in outbox(site.desk)]
    assert kinds.count("registration") == 1
    text = rendered(site.desk, "registration")
    url = link_in(text, "confirm")
    new_ticket(site.desk)  # the same customer again: no second confirmation mail
    assert [r["kind"] for r in outbox(site.desk)].count("registration") == 1
    path = url.removeprefix(site.settings.web.base_url)
    status, page = await site.get(path)
    assert status == 200 and "erika@kunde.de" in page
    assert site.desk.show(first)["requester"]["confirmed"] is False
    status, page = await site.submit(path)
    assert status == 200 and "ist jetzt bestätigt" in page
    requester = site.desk.show(first)["requester"]
    assert requester["confirmed"] is True and requester["confirmed_at"]
    assert "(address confirmed)" in site.desk.cli("tickets", "show", str(first)).stdout
    status, page = await site.get(path)
    assert "bereits bestätigt" in page and "<form" not in page


async def test_registration_mail_can_be_switched_off(desk: Desk) -> None:
    desk.env["MAILDESK_REGISTRATION__CONFIRM"] = "false"
    new_ticket(desk)
    assert "registration" not in [r["kind"] for r in outbox(desk)]
    assert "(address not confirmed)" in desk.cli("tickets", "show", str(
        desk.list()[0]["number"])).stdout


# -- the report ------------------------------------------------------------------------------


async def test_report_csat_counts_and_scores_by_agent_and_type(site: Site) -> None:
    desk = site.desk
    numbers = [new_ticket(desk, f"kunde{i}@firma.example") for i in range(4)]
    for number in numbers[:3]:
        reply(desk, number, solve=True)  # the agent becomes the assignee
    assert desk.cli("tickets", "set", str(numbers[3]), "--type", "incident").exit_code == 0
    for number, score in zip(numbers, ["1", "4", "5", "5"], strict=True):
        assert (await site.submit(site.path("csat", number), score=score,
                                  reason="zu spät" if score == "1" else ""))[0] == 200
    overall = json.loads(desk.cli("report", "csat", "--json").stdout)
    assert overall["total"] == 4
    [everything] = overall["groups"]
    assert (everything["average"], everything["csat"], everything["with_reason"]) == (
        3.75, 75.0, 1)
    assert everything["counts"] == {"very_dissatisfied": 1, "dissatisfied": 0, "neutral": 0,
                                    "satisfied": 1, "very_satisfied": 2}
    by_agent = json.loads(desk.cli("report", "csat", "--by", "agent", "--json").stdout)
    assert [(g["key"], g["ratings"], g["average"]) for g in by_agent["groups"]] == [
        (AGENT, 3, 3.33), ("(none)", 1, 5.0)]
    by_type = json.loads(desk.cli("report", "csat", "--by", "type", "--json").stdout)
    assert {g["key"]: g["ratings"] for g in by_type["groups"]} == {"user_help": 3,
                                                                  "incident": 1}
    assert query_database(desk.engine()).csat == {"1": 1, "4": 1, "5": 2}  # for /metrics
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = json.loads(desk.cli("report", "csat", "--since", tomorrow, "--json").stdout)
    assert later["total"] == 0 and later["groups"] == []
    table = desk.cli("report", "csat", "--by", "agent").stdout
    assert AGENT in table and "3.33" in table
    bad = desk.cli("report", "csat", "--since", "gestern")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr


async def test_customers_set_language_and_confirmation(site: Site) -> None:
    number = new_ticket(site.desk)
    result = site.desk.cli("customers", "set", "erika@kunde.de", "--language", "en",
                           "--confirmed")
    assert result.exit_code == 0, result.output
    status, page = await site.get(site.path("csat", number))
    assert status == 200
    assert "How satisfied" in page
    listed = json.loads(site.desk.cli("customers", "list", "--json").stdout)
    assert [(c["email"], c["language"], c["confirmed"]) for c in listed] == [
        ("erika@kunde.de", "en", True)]
    assert json.loads(site.desk.cli("customers", "list", "--unconfirmed", "--json").stdout) == []
    missing = site.desk.cli("customers", "set", "nobody@x.example", "--language", "de")
    assert missing.exit_code == 1 and "no customer" in missing.stderr
    with site.desk.engine().connect() as connection:
        assert connection.execute(select(Customer.__table__.c.confirmed_at)).scalar()


async def test_an_agents_mail_with_status_solved_is_the_solution_with_the_survey(
        site: Site) -> None:
    number = new_ticket(site.desk)
    own = tokens.agent_reply_address(load_secret(site.desk.settings), "support@example.com",
                                     number, "agent@example.com")  # the notice's Reply-To
    answer = make_mail(subject=f"AW: [#{number}] Frage zur Abrechnung",
                       sender="Demo Agent <agent@example.com>", to=own,
                       body="#status solved\n\nDie Rechnung ist korrigiert.\n")
    code, outcome = site.desk.ingest(answer)
    assert code == 0 and (outcome["action"], outcome["ticket"]) == ("appended", number)
    assert site.desk.show(number)["status"] == "solved"
    kinds = [r["kind"] for r in outbox(site.desk)]
    assert "solution" in kinds and "agent_reply" not in kinds
    text = rendered(site.desk, "solution")
    assert "Die Rechnung ist korrigiert." in text and "#status" not in text
    links.verify(site.secret, "csat", link_in(text, "csat").rsplit("/", 1)[1],
                 datetime.now(UTC))


def test_two_solve_submits_at_once_send_one_set_of_mails(desk: Desk) -> None:
    """A double click: of two concurrent "mark as solved", one wins."""
    number = new_ticket(desk)
    before = len(outbox(desk))
    engine, secret = desk.engine(), load_secret(desk.settings)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        barrier.wait()
        outcomes.append(customer_actions.mark_solved(engine, desk.settings, secret,
                                                     number).outcome)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["already_solved", "solved"]
    assert [r["kind"] for r in outbox(desk)[before:]] == ["solved_by_customer",
                                                         "agent_notice_solved"]
    assert [e["field"] for e in desk.show(number)["events"]].count("solved_by_customer") == 1
