"""Who may speak as an agent, and which customers' mails are forgeries
(process/pipeline/authenticity.py), as pure steps over a fake lookup."""

from __future__ import annotations

from dataclasses import replace

import pytest

from maildesk.mail import tokens
from maildesk.process import pipeline
from maildesk.types import Address, Context, ParsedMail, TicketInfo
from tests.fakes import FakeLookup

SECRET = b"unit-test-secret"
SUPPORT = "support@example.com"
AGENT = "agent@example.com"
MX = "mx.example.com"
CTX = Context(our_addresses=frozenset({SUPPORT}), secret=SECRET,
              agents=frozenset({AGENT, "other@example.com"}))
TRUSTING = replace(CTX, trusted_authserv_ids=frozenset({MX}))
OWN = tokens.agent_reply_address(SECRET, SUPPORT, 10014, AGENT)


def lookup() -> FakeLookup:
    return FakeLookup(
        tickets={10014: TicketInfo(10014, "open", "Heizung"),
                 10015: TicketInfo(10015, "open", "Wasser")},
        participants={10014: {"erika@kunde.de"}, 10015: {"hans@kunde.de"}},
    )


def mail(**changes: object) -> ParsedMail:
    base = ParsedMail(
        subject="Re: [#10014] Heizung", from_=Address(AGENT, "Demo Agent"), sender=None,
        reply_to=(), to=(Address(SUPPORT),), cc=(), message_id="x@attacker.example",
        in_reply_to=(), references=(), date=None, headers={}, text="#assign agent@example.com\n"
        "#priority high\n\nBitte hier einloggen: https://phish.example/", html="", attachments=(),
    )
    return replace(base, **changes)


def run(ctx: Context = CTX, **changes: object):
    return pipeline.run(mail(**changes), lookup(), ctx)


def test_the_forged_agent_mail_of_the_issue_is_held_on_its_ticket() -> None:
    """From: agent@…, Subject Re: [#10014], to the plain support address,
    Authentication-Results dmarc=fail by the trusted MX."""
    triage = run(TRUSTING, auth_results=(
        f"{MX}; spf=fail smtp.mailfrom=attacker.example; dmarc=fail header.from=example.com",))
    assert (triage.action, triage.reason, triage.ticket) == ("hold", "unverified_agent", 10014)
    assert triage.authenticity.startswith("unverified")
    assert "dmarc=fail" in (triage.detail or "")


@pytest.mark.parametrize("to", [
    SUPPORT,                                                              # the plain address
    tokens.reply_address(SECRET, SUPPORT, 10014),                         # the customer's token
    tokens.agent_reply_address(SECRET, SUPPORT, 10014, "other@example.com"),  # another agent's
    tokens.agent_reply_address(b"other secret", SUPPORT, 10014, AGENT),   # a forged signature
])
def test_an_agent_mail_without_its_own_reply_address_is_held(to: str) -> None:
    triage = run(to=(Address(to),), subject="Re: [#10014] Heizung")
    assert triage.action == "hold" and triage.reason == "unverified_agent"


def test_the_agents_own_reply_address_proves_the_agent() -> None:
    triage = run(to=(Address(OWN),), subject="whatever the client made of it")
    assert (triage.action, triage.ticket, triage.sender_role) == ("append", 10014, "agent")
    assert triage.thread_via == "token"
    assert triage.authenticity == "agent reply address of #10014"


def test_the_reply_address_decides_the_ticket_over_the_subject() -> None:
    other = tokens.agent_reply_address(SECRET, SUPPORT, 10015, AGENT)
    triage = run(to=(Address(other),), subject="Re: [#10014] Heizung")
    assert (triage.action, triage.ticket, triage.sender_role) == ("append", 10015, "agent")


def test_the_envelope_recipient_counts_as_the_address() -> None:
    triage = pipeline.run(mail(), lookup(), replace(CTX, recipients=(OWN,)))
    assert (triage.action, triage.sender_role) == ("append", "agent")


def test_a_trusted_dmarc_pass_proves_the_agent() -> None:
    triage = run(TRUSTING, auth_results=(f"{MX}; dmarc=pass header.from=example.com",))
    assert (triage.action, triage.sender_role) == ("append", "agent")
    assert "dmarc=pass" in triage.authenticity


def test_a_dmarc_pass_from_an_untrusted_authserv_id_proves_nothing() -> None:
    forged = "mx.attacker.example; dmarc=pass header.from=example.com"
    triage = run(TRUSTING, auth_results=(forged,))
    assert triage.action == "hold"
    without_trust = run(auth_results=(f"{MX}; dmarc=pass header.from=example.com",))
    assert without_trust.action == "hold"


def test_an_unproven_agent_address_opening_a_new_ticket_is_a_customer() -> None:
    """Nothing relayed, nothing applied: the acknowledgement goes to the
    agent's real address."""
    triage = run(subject="Neue Anfrage")
    assert (triage.action, triage.sender_role) == ("create", "customer")
    assert triage.authenticity.startswith("unverified")


def test_a_customers_dmarc_failure_is_held_not_threaded() -> None:
    triage = run(TRUSTING, from_=Address("erika@kunde.de"), text="Danke",
                 auth_results=(f"{MX}; dmarc=fail (p=reject) header.from=kunde.de",))
    assert (triage.action, triage.reason) == ("hold", "dmarc_fail")
    new = run(TRUSTING, from_=Address("erika@kunde.de"), subject="Neu", text="Hallo",
              auth_results=(f"{MX}; dmarc=fail header.from=kunde.de",))
    assert (new.action, new.reason) == ("hold", "dmarc_fail")


def test_a_customers_dmarc_pass_is_shown_and_threads() -> None:
    triage = run(TRUSTING, from_=Address("erika@kunde.de"), text="Danke",
                 auth_results=(f"{MX}; dmarc=pass header.from=kunde.de",))
    assert (triage.action, triage.ticket) == ("append", 10014)
    assert "dmarc=pass" in triage.authenticity


def test_a_dmarc_failure_from_an_untrusted_authserv_id_holds_nothing() -> None:
    triage = run(TRUSTING, from_=Address("erika@kunde.de"), text="Danke",
                 auth_results=("evil.example; dmarc=fail header.from=kunde.de",))
    assert (triage.action, triage.ticket) == ("append", 10014)


def test_a_body_reference_from_a_stranger_does_not_thread() -> None:
    """A customer forwarded our mail to a third person, who writes to
    support quoting it: a new ticket, nothing of the old one reaches her."""
    quoted = "Können Sie mir auch helfen?\n> " + tokens.body_reference(SECRET, 10014)
    triage = run(from_=Address("dritte@andere.example"), subject="Heizung", text=quoted)
    assert (triage.action, triage.ticket) == ("create", None)
    assert "takes no part" in (triage.detail or "")
    participant = run(from_=Address("erika@kunde.de"), subject="Heizung", text=quoted)
    assert (participant.action, participant.ticket, participant.thread_via) == (
        "append", 10014, "body")


def test_a_recovered_mail_counts_as_proven() -> None:
    triage = run(replace(CTX, recovered_by="cli:ops"))
    assert (triage.action, triage.sender_role) == ("append", "agent")
    assert triage.authenticity == "recovered from held mail by cli:ops"


def test_a_recovered_auto_reply_is_a_reply() -> None:
    auto = {"headers": {"auto-submitted": "auto-replied"}, "from_": Address("erika@kunde.de"),
            "text": "Ich bin im Urlaub"}
    assert run(**auto).action == "note"
    assert run(replace(CTX, recovered_by="cli:ops"), **auto).action == "append"
