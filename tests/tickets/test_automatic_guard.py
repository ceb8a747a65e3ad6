"""Belt and braces (issue 19): nothing automatic goes to the null sender,
a mailer-daemon / postmaster address or a bouncing one, whatever the
classification said; notices.automatic_refusal is the one guard, and
every automatic kind plan() makes honours it."""

from __future__ import annotations

import pytest

from maildesk.tickets import notices
from maildesk.tickets.notices import Audience, automatic_refusal, plan

BAD = {
    "": "null sender",
    "<>": "null sender",
    "MAILER-DAEMON@mx.kunde.de": "system address",
    "Mailer-Daemon@MX.KUNDE.DE": "system address",
    "MAILER-DAEMON": "system address",
    "postmaster@kunde.de": "system address",
    "PostMaster@kunde.de": "system address",
    "gone@kunde.de": "bouncing",
}


@pytest.mark.parametrize(("address", "reason"), BAD.items())
def test_refused_addresses(address: str, reason: str) -> None:
    assert automatic_refusal(address, frozenset({"gone@kunde.de"})) == reason


@pytest.mark.parametrize("address", ["erika@kunde.de", "post.office@kunde.de",
                                     "daemon.tools@kunde.de", "gone@kunde.de"])
def test_people_may_be_told(address: str) -> None:
    assert automatic_refusal(address, frozenset()) is None


#: Every event that mails the customer something automatic, and its kind.
AUTOMATIC_EVENTS = ["ticket_created", "ticket_recorded", "reopened", "followup_created",
                    "on_hold", "release", "registration", "solved_by_customer", "closed"]


def _customer_mails(event: str, requester: str, cc: tuple[str, ...] = ()) -> list[str]:
    audience = Audience(requester=requester, participants=cc,
                        bouncing=frozenset({"gone@kunde.de"}), all_agents=("agent@example.com",),
                        ours=frozenset({"support@maildesk.example"}))
    return [address for p in plan(event, audience) if p.auto_submitted is not None
            for address in (*p.to, *p.cc) if address != "agent@example.com"]


@pytest.mark.parametrize("event", AUTOMATIC_EVENTS)
@pytest.mark.parametrize("address", list(BAD))
def test_no_automatic_kind_reaches_a_refused_address(event: str, address: str) -> None:
    assert _customer_mails(event, address) == []


@pytest.mark.parametrize("event", AUTOMATIC_EVENTS)
def test_a_person_gets_every_automatic_kind(event: str) -> None:
    """The guard refuses machines, not customers (so the test above can fail)."""
    assert _customer_mails(event, "erika@kunde.de") == ["erika@kunde.de"]


def test_an_agents_reply_still_reaches_a_bouncing_customer() -> None:
    """A person's mail is no automatic mail: only noreply rules apply."""
    audience = Audience(requester="gone@kunde.de", bouncing=frozenset({"gone@kunde.de"}))
    assert [p.to for p in plan("agent_reply", audience)] == [("gone@kunde.de",)]
    assert notices.plan("agent_reply", Audience(requester="MAILER-DAEMON@x.de")) == []
