"""The pipeline steps as pure functions: a dict fake instead of the store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from maildesk.config import load_settings
from maildesk.process import pipeline
from maildesk.process.pipeline.context import make_context
from maildesk.types import Address, Context, ParsedMail, Route, TicketInfo
from tests.fakes import FakeLookup


def mail(**changes: object) -> ParsedMail:
    base = ParsedMail(
        subject="Heizung defekt",
        from_=Address("erika@kunde.de", "Erika"),
        sender=None,
        reply_to=(),
        to=(Address("support@example.com"),),
        cc=(),
        message_id="m1@kunde.de",
        in_reply_to=(),
        references=(),
        date=None,
        headers={},
        text="Die Heizung ist kalt.",
        html="",
        attachments=(),
    )
    return replace(base, **changes)


CTX = Context(
    our_addresses=frozenset({"support@example.com", "stoerung@example.com"}),
    routes={"stoerung@example.com": Route(request_type="incident", group="2nd-level")},
    free_mail_domains=frozenset({"gmail.com", "web.de"}),
)


def test_plain_mail_opens_user_help_ticket_with_low_priority() -> None:
    triage = pipeline.run(mail(), FakeLookup(), CTX)
    assert triage.action == "create"
    assert triage.route.request_type == "user_help"
    assert triage.priority == "low"
    assert triage.requester == Address("erika@kunde.de", "Erika")
    assert triage.organisation_domain == "kunde.de"


def test_route_by_recipient_sets_type_group_and_following_priority() -> None:
    triage = pipeline.run(mail(to=(Address("stoerung@example.com"),)), FakeLookup(), CTX)
    assert triage.route.request_type == "incident"
    assert triage.route.group == "2nd-level"
    assert triage.priority == "normal"


def test_envelope_recipient_plus_form_routes_too() -> None:
    ctx = replace(CTX, recipients=("Stoerung+abc@example.com",))
    triage = pipeline.run(mail(to=(Address("someone@else.de"),)), FakeLookup(), ctx)
    assert triage.route.request_type == "incident"


def test_route_priority_overrides_type_priority() -> None:
    ctx = replace(CTX, routes={"support@example.com": Route("urgent", priority="normal")})
    assert pipeline.run(mail(), FakeLookup(), ctx).priority == "normal"
    ctx = replace(CTX, routes={"support@example.com": Route("urgent")})
    assert pipeline.run(mail(), FakeLookup(), ctx).priority == "high"


@pytest.mark.parametrize("domain", ["gmail.com", "web.de"])
def test_free_mail_domains_form_no_organisation(domain: str) -> None:
    triage = pipeline.run(mail(from_=Address(f"max@{domain}")), FakeLookup(), CTX)
    assert triage.action == "create"
    assert triage.organisation_domain is None


def test_participants_are_to_and_cc_without_us_and_requester() -> None:
    triage = pipeline.run(
        mail(
            to=(Address("support@example.com"), Address("chef@kunde.de", "Chef")),
            cc=(Address("erika@kunde.de"), Address("support+x@example.com"),
                Address("chef@kunde.de"), Address("kollege@kunde.de")),
        ),
        FakeLookup(), CTX,
    )
    assert [p.email for p in triage.participants] == ["chef@kunde.de", "kollege@kunde.de"]


@pytest.mark.parametrize(
    ("changes", "requester"),
    [
        ({"from_": None, "sender": Address("sek@kunde.de")}, "sek@kunde.de"),
        ({"from_": None, "reply_to": (Address("antwort@kunde.de"),)}, "antwort@kunde.de"),
        ({"from_": None, "return_path": "bounce@kunde.de"}, "bounce@kunde.de"),
    ],
)
def test_requester_falls_back_when_from_is_missing(changes: dict, requester: str) -> None:
    triage = pipeline.run(mail(**changes), FakeLookup(), CTX)
    assert triage.action == "create"
    assert triage.requester is not None and triage.requester.email == requester


def test_mail_without_any_sender_is_rejected_with_reason() -> None:
    triage = pipeline.run(mail(from_=None, return_path=""), FakeLookup(), CTX)
    assert triage.action == "reject"
    assert "no sender" in (triage.reason or "")


def test_envelope_sender_is_the_last_resort() -> None:
    ctx = replace(CTX, envelope_from="mta-sender@kunde.de")
    triage = pipeline.run(mail(from_=None), FakeLookup(), ctx)
    assert triage.requester == Address("mta-sender@kunde.de")


def test_mail_from_our_own_address_is_ignored() -> None:
    triage = pipeline.run(mail(from_=Address("support+t1@example.com")), FakeLookup(), CTX)
    assert triage.action == "ignore"
    assert triage.reason == "loop" and "own address" in (triage.detail or "")


def test_reply_threads_by_in_reply_to_and_references() -> None:
    lookup = FakeLookup(stored={"orig@kunde.de": 10042},
                        tickets={10042: TicketInfo(10042, "open", "x")})
    assert pipeline.run(mail(in_reply_to=("orig@kunde.de",)), lookup, CTX).ticket == 10042
    triage = pipeline.run(mail(references=("x@y", "orig@kunde.de")), lookup, CTX)
    assert (triage.action, triage.ticket) == ("append", 10042)
    assert pipeline.run(mail(in_reply_to=("other@x",)), lookup, CTX).action == "create"


def test_parser_problems_become_notes() -> None:
    triage = pipeline.run(mail(problems=("body part 1: charset 'x' unknown",)), FakeLookup(), CTX)
    assert triage.notes == ("body part 1: charset 'x' unknown",)


def test_context_from_settings_knows_routes_and_addresses(tmp_path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        "[mail]\naddresses = ['Help@Firma.de']\n"
        "[[routes]]\naddress = 'help@firma.de'\nrequest_type = 'urgent'\n"
    )
    ctx = make_context(load_settings(path, {}))
    assert ctx.is_ours("help+abc@firma.de")
    assert not ctx.is_ours("helpdesk@firma.de")
    assert ctx.routes["help@firma.de"].request_type == "urgent"
