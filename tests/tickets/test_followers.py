"""Followers (issue #15): who may follow a ticket, and that followers get
the public replies as mails of their own instead of a visible Cc."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from maildesk import access
from maildesk.db import session_scope
from maildesk.models import Customer, Organisation, OrganisationDomain, Outbox, Participant
from maildesk.tickets import notices
from tests.conftest import Desk
from tests.mailfactory import make_mail

TICKET = access.TicketFacts(requester_id=1, organisation_id=10)


def viewer(role: str = "user", organisation: int | None = 10, *, confirmed: bool = True,
           own: access.Setting | None = None, org_setting: access.Setting = "organisation"
           ) -> access.Viewer:
    return access.Viewer(customer_id=2, email="x@kunde.de", confirmed=confirmed, role=role,
                         organisation_id=organisation, own_setting=own,
                         organisation_setting=org_setting if organisation else None)


@pytest.mark.parametrize(("who", "refused"), [
    (None, False),  # no customer: the agent's explicit choice
    (viewer("main_contact"), False),
    (viewer("admin", org_setting="own"), False),  # the seeds: may follow any ticket
    (viewer("admin", confirmed=False), False),
    (viewer("user"), True),  # sees only their own
    (viewer("user", own="organisation"), False),  # set to see the organisation's
    (viewer("user", own="organisation", org_setting="own"), True),
    (viewer("main_contact", organisation=11), True),  # another organisation
    (viewer("main_contact", organisation=None), True),
])
def test_who_may_follow(who: access.Viewer | None, refused: bool) -> None:
    assert (access.follower_refusal(who, TICKET) is not None) is refused


def test_followers_get_replies_alone_and_ccs_stay_visible() -> None:
    audience = notices.Audience(requester="erika@kunde.de",
                                participants=("cc@kunde.de", "chef@kunde.de", "boss@kunde.de"),
                                followers=("chef@kunde.de", "boss@kunde.de"))
    for event, kind in (("agent_reply", "agent_reply"), ("solution", "solution")):
        plans = notices.plan(event, audience)
        assert [(p.kind, p.to, p.cc) for p in plans] == [
            (kind, ("erika@kunde.de",), ("cc@kunde.de",)),
            (kind, ("chef@kunde.de",), ()), (kind, ("boss@kunde.de",), ())]
    # automatic notices go to the requester only, as before
    assert [p.to for p in notices.plan("closed", audience)] == [("erika@kunde.de",)]


def test_set_fields_refuses_a_follower_who_may_not_see_the_ticket(desk: Desk) -> None:
    with session_scope(desk.engine()) as session:
        ours, other = Organisation(name="Kunde"), Organisation(name="Andere")
        session.add_all([ours, other])
        session.flush()
        session.add(OrganisationDomain(organisation_id=ours.id, domain="kunde.de"))
        session.add_all([
            Customer(email="chef@kunde.de", organisation_id=ours.id, role="main_contact"),
            Customer(email="kollege@kunde.de", organisation_id=ours.id, role="user",
                     confirmed=True),
            Customer(email="fremd@andere.de", organisation_id=other.id, role="main_contact",
                     confirmed=True)])
    _, outcome = desk.ingest(make_mail(sender="erika@kunde.de"))
    number = str(outcome["ticket"])
    for address, why in (("fremd@andere.de", "another organisation"),
                         ("kollege@kunde.de", "may not see this ticket")):
        result = desk.cli("tickets", "set", number, "--add-follower", "chef@kunde.de",
                          "--add-follower", address)
        assert result.exit_code != 0
        assert address in result.output and why in result.output
    engine = desk.engine()
    with engine.connect() as connection:
        assert connection.execute(select(Participant.__table__)).all() == []  # nothing
    ok = desk.cli("tickets", "set", number, "--add-follower", "chef@kunde.de",
                  "--add-follower", "partner@extern.de", "--add-cc", "kollege@kunde.de")
    assert ok.exit_code == 0, ok.output
    reply = desk.cli("tickets", "reply", number, "--agent", "agent@example.com",
                     "--text", "Erledigt.")
    assert reply.exit_code == 0, reply.output
    with engine.connect() as connection:
        rows = connection.execute(select(Outbox.__table__.c.to_addrs, Outbox.__table__.c.cc_addrs)
                                  .where(Outbox.__table__.c.kind == "agent_reply")).all()
    assert sorted((r.to_addrs, r.cc_addrs) for r in rows) == [
        ("chef@kunde.de", ""), ("erika@kunde.de", "kollege@kunde.de"),
        ("partner@extern.de", "")]
    # the reply as the ticket shows it names the visible Cc only
    (sent,) = [m for m in desk.show(int(number))["messages"] if m["direction"] == "out"]
    assert sent["cc"] == ["kollege@kunde.de"] or sent["cc"] == "kollege@kunde.de"
