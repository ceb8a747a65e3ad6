"""Threading and noise steps as pure functions over a fake lookup."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from maildesk.mail import tokens
from maildesk.process import pipeline
from maildesk.types import Address, Context, ParsedMail, TicketInfo
from tests.fakes import FakeLookup

SECRET = b"unit-test-secret"
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def lookup(status: str = "open") -> FakeLookup:
    return FakeLookup(
        tickets={10001: TicketInfo(10001, status, "Heizung kalt")},
        stored={"start@kunde.de": 10001},
        participants={10001: {"erika@kunde.de", "kollege@kunde.de"}},
    )


CTX = Context(
    our_addresses=frozenset({"support@example.com"}), secret=SECRET,
    agents=frozenset({"agent@example.com"}), now=NOW,
    blocked_senders=frozenset({"spam@evil.example", "@blocked.example"}),
    rate_limit_count=20, rate_limit_window=timedelta(minutes=10),
)


def mail(**changes: object) -> ParsedMail:
    base = ParsedMail(
        subject="Heizung kalt", from_=Address("erika@kunde.de", "Erika"), sender=None,
        reply_to=(), to=(Address("support@example.com"),), cc=(), message_id="m@kunde.de",
        in_reply_to=(), references=(), date=None, headers={}, text="Hallo", html="",
        attachments=(),
    )
    return replace(base, **changes)


def run(status: str = "open", **changes: object):
    return pipeline.run(mail(**changes), lookup(status), CTX)


@pytest.mark.parametrize(("changes", "via"), [
    ({"in_reply_to": ("start@kunde.de",)}, "header"),
    ({"references": (tokens.new_message_id(SECRET, 10001, "example.com"),)}, "our_message_id"),
    ({"to": (Address(tokens.reply_address(SECRET, "support@example.com", 10001)),)}, "token"),
    ({"text": "Danke\n> " + tokens.body_reference(SECRET, 10001)}, "body"),
    ({"subject": "AW: WG: [EXTERN] [#10001] Heizung"}, "subject"),
])
def test_each_way_of_threading(changes: dict, via: str) -> None:
    triage = run(**changes)
    assert (triage.action, triage.ticket, triage.thread_via) == ("append", 10001, via)


def test_headers_win_over_the_subject() -> None:
    lk = lookup()
    lk.tickets[10002] = TicketInfo(10002, "open", "anderes")
    triage = pipeline.run(mail(in_reply_to=("start@kunde.de",), subject="AW: [#10002] x"), lk, CTX)
    assert triage.ticket == 10001


@pytest.mark.parametrize("changes", [
    {"references": ("md.10001.0123456789abcdef.aaaaaaaaaaaaaaaa@example.com",)},
    {"to": (Address("support+10001-aaaaaaaaaaaaa@example.com"),)},
    {"text": "[ref:10001.aaaaaaaaaaaaa]"},
    {"in_reply_to": (tokens.new_message_id(b"other-secret", 10001, "example.com"),)},
])
def test_forged_references_never_thread(changes: dict) -> None:
    assert run(**changes).action == "create"


def test_subject_tag_from_a_stranger_opens_a_new_ticket() -> None:
    triage = run(from_=Address("fremder@andere.de"), subject="WG: [#10001] Heizung")
    assert triage.action == "create" and triage.ticket is None
    assert "takes no part" in (triage.detail or "")


AGENT_ADDRESS = tokens.agent_reply_address(SECRET, "support@example.com", 10001,
                                           "agent@example.com")


def test_subject_tag_from_an_agent_threads_with_the_agents_reply_address() -> None:
    triage = run(from_=Address("agent@example.com"), subject="Re: [#10001] Heizung",
                 to=(Address(AGENT_ADDRESS),))
    assert (triage.action, triage.sender_role) == ("append", "agent")
    assert triage.authenticity == "agent reply address of #10001"


def test_tag_of_a_ticket_that_does_not_exist_opens_a_new_one() -> None:
    assert run(subject="AW: [#99999] x").action == "create"


@pytest.mark.parametrize(("status", "action", "new_status"), [
    ("new", "append", "new"), ("open", "append", "open"), ("pending", "append", "open"),
    ("on_hold", "append", "on_hold"), ("solved", "reopen", "open"), ("closed", "followup", "new"),
])
def test_customer_reply_by_status(status: str, action: str, new_status: str) -> None:
    triage = run(status, in_reply_to=("start@kunde.de",))
    assert (triage.action, triage.new_status) == (action, new_status)


def test_agent_mail_never_changes_the_status() -> None:
    triage = run("solved", from_=Address("agent@example.com"), in_reply_to=("start@kunde.de",),
                 to=(Address(AGENT_ADDRESS),))
    assert (triage.action, triage.new_status) == ("append", "solved")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"from_": Address("support@example.com")}, "loop"),
    ({"message_id": tokens.new_message_id(SECRET, 10001, "example.com")}, "loop"),
    ({"from_": Address("spam@evil.example")}, "blocked"),
    ({"from_": Address("anyone@blocked.example")}, "blocked"),
])
def test_loops_and_blocked_senders_are_ignored(changes: dict, reason: str) -> None:
    triage = run(**changes)
    assert (triage.action, triage.reason) == ("ignore", reason)


def test_rate_limit_ignores_the_sender_beyond_the_limit() -> None:
    lk = lookup()
    lk.recent["erika@kunde.de"] = 19
    assert pipeline.run(mail(), lk, CTX).action == "create"
    lk.recent["erika@kunde.de"] = 20
    triage = pipeline.run(mail(), lk, CTX)
    assert (triage.action, triage.reason) == ("ignore", "rate_limited")
    assert pipeline.run(mail(), lk, replace(CTX, now=None)).action == "create"  # imports


def test_auto_reply_on_a_ticket_becomes_a_note_and_never_reopens() -> None:
    triage = run("solved", in_reply_to=("start@kunde.de",),
                 headers={"auto-submitted": "auto-replied"},
                 subject="Automatische Antwort: Heizung kalt")
    assert (triage.action, triage.reason, triage.ticket) == ("note", "auto_reply", 10001)


def test_unthreaded_auto_reply_opens_nothing() -> None:
    triage = run(headers={"auto-submitted": "auto-replied"}, subject="Out of Office")
    assert (triage.action, triage.reason) == ("ignore", "auto_reply")


def _with_request() -> FakeLookup:
    from maildesk.types import ThirdPartyInfo

    fake = lookup("solved")
    fake.third_parties[7] = ThirdPartyInfo(7, 10001, "dora@andere.example", "ask")
    return fake


def test_a_third_party_answer_is_a_statement_and_never_reopens() -> None:
    to = (Address(tokens.third_party_reply_address(SECRET, "support@example.com", 7)),)
    dora = Address("dora@andere.example", "Dora")
    triage = pipeline.run(mail(from_=dora, to=to), _with_request(), CTX)
    assert (triage.action, triage.ticket, triage.thread_via) == ("statement", 10001,
                                                                 "third_party")
    assert triage.authenticity == ""
    other = pipeline.run(mail(from_=Address("mallory@evil.example"), to=to), _with_request(), CTX)
    assert other.action == "statement" and other.authenticity.startswith("unverified")
    mid = tokens.third_party_message_id(SECRET, 10001, 7, "example.com")
    by_id = pipeline.run(mail(from_=dora, in_reply_to=(mid,)), _with_request(), CTX)
    assert (by_id.action, by_id.thread_via) == ("statement", "third_party")


def test_a_forged_third_party_address_threads_nothing() -> None:
    forged = Address("support+tp-7-aaaaaaaaaaaaa@example.com")
    triage = pipeline.run(mail(from_=Address("dora@andere.example"), to=(forged,)),
                          _with_request(), CTX)
    assert (triage.action, triage.ticket) == ("create", None)
    assert "forged" in (triage.detail or "")


def test_a_stranger_on_the_ticket_token_is_an_internal_statement() -> None:
    to = (Address(tokens.reply_address(SECRET, "support@example.com", 10001)),)
    triage = run("solved", from_=Address("dora@andere.example"), to=to)
    assert triage.action == "statement" and triage.authenticity.startswith("unverified")
    assert run("solved", to=to).action == "reopen"  # the requester still reopens
