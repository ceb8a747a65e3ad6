"""Who sees which tickets (SPEC §8, seeds 000/001): the pure rule, and its
SQL twin (store/access.py) and threading's participant check giving the
same answer for every combination of role, own setting, organisation
setting and confirmation, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

from sqlalchemy import select
from sqlmodel import Session

from maildesk import access
from maildesk.access import TicketFacts, Viewer
from maildesk.models import Customer, Organisation, Participant, Ticket
from maildesk.store import access as access_store
from maildesk.store.lookup import StoreLookup
from tests.conftest import Desk


def _viewer(**kwargs: object) -> Viewer:
    return Viewer(**{"customer_id": 1, "email": "a@firma.de", "confirmed": True,
                     "organisation_id": 7, "organisation_setting": "organisation",
                     **kwargs})  # type: ignore[arg-type]


def test_main_contacts_and_admins_see_the_organisation_users_their_own() -> None:
    assert access.scope(_viewer(role="main_contact")) == "organisation"
    assert access.scope(_viewer(role="admin")) == "organisation"
    assert access.scope(_viewer(role="user")) == "own"


def test_the_stricter_of_user_and_organisation_setting_wins() -> None:
    # an organisation that keeps tickets private keeps even its main contact out
    assert access.scope(_viewer(role="main_contact", organisation_setting="own")) == "own"
    # a user granted the organisation's tickets sees them where the organisation shares
    assert access.scope(_viewer(own_setting="organisation")) == "organisation"
    assert access.scope(_viewer(own_setting="organisation",
                                organisation_setting="own")) == "own"
    # a main contact restricted to their own tickets
    assert access.scope(_viewer(role="main_contact", own_setting="own")) == "own"


def test_unconfirmed_sees_nothing_and_no_organisation_means_own() -> None:
    assert access.scope(_viewer(role="main_contact", confirmed=False)) == "none"
    assert not access.may_see(_viewer(confirmed=False), TicketFacts(1, 7))
    lone = _viewer(role="main_contact", organisation_id=None, organisation_setting=None)
    assert access.scope(lone) == "own"


def test_own_cc_and_followed_tickets_are_seen_others_only_with_the_organisation() -> None:
    user, contact = _viewer(), _viewer(role="main_contact")
    assert access.may_see(user, TicketFacts(requester_id=1, organisation_id=7))
    assert access.may_see(user, TicketFacts(2, 7, participants=("a@firma.de",)))
    assert not access.may_see(user, TicketFacts(2, 7))
    assert access.may_see(contact, TicketFacts(2, 7))
    # another organisation's ticket never, whatever the role
    assert not access.may_see(contact, TicketFacts(2, 8))
    assert not access.may_see(contact, TicketFacts(2, None))


def test_sql_and_threading_give_the_rules_answer_for_every_combination(desk: Desk) -> None:
    engine = desk.engine()
    combos = list(itertools.product(access.ROLES, (None, "own", "organisation"),
                                    (True, False), ("shared", "private", None)))
    with Session(engine) as session:
        orgs = {"shared": Organisation(name="Geteilt GmbH", ticket_access="organisation"),
                "private": Organisation(name="Privat AG", ticket_access="own")}
        session.add_all(orgs.values())
        session.flush()
        customers = []
        for n, (role, setting, confirmed, org) in enumerate(combos):
            customer = Customer(email=f"c{n}@x{org}.de", role=role, ticket_access=setting,
                                confirmed=confirmed,
                                organisation_id=orgs[org].id if org else None)
            customers.append(customer)
        session.add_all(customers)
        session.flush()
        tickets = []
        for n, customer in enumerate(customers):
            tickets.append(Ticket(number=1000 + n, subject=f"T{n}", requester_id=customer.id,
                                  organisation_id=customer.organisation_id))
        session.add_all(tickets)
        session.flush()
        # every third customer is CC of the next customer's ticket
        cc = {tickets[(n + 1) % len(tickets)].id: customers[n].email
              for n in range(0, len(customers), 3)}
        session.add_all([Participant(ticket_id=t, email=e, role="cc") for t, e in cc.items()])
        session.commit()
        facts = {t.id: TicketFacts(t.requester_id, t.organisation_id,
                                   (cc[t.id],) if t.id in cc else ()) for t in tickets}
        numbers = {t.id: t.number for t in tickets}
        lookup = StoreLookup(session)
        checked = 0
        for customer in customers:
            viewer = access_store.viewer_of(session, customer.id)
            assert viewer is not None
            expected = {tid for tid, f in facts.items() if access.may_see(viewer, f)}
            assert access.may_see(viewer, facts[tickets[customers.index(customer)].id]) == (
                customer.confirmed)
            found = set(session.connection().execute(
                select(Ticket.__table__.c.id).where(access_store.visible(viewer))).scalars())
            assert found == expected, (customer.email, viewer)
            # threading's "participant": requester, CC, or a member who may see it;
            # checked for the tickets of the same organisation and one of another
            foreign = next(t for t, f in facts.items()
                           if f.organisation_id != customer.organisation_id)
            for tid, fact in facts.items():
                if tid != foreign and fact.organisation_id != customer.organisation_id:
                    continue
                assert lookup.is_participant(numbers[tid], customer.email) == (
                    fact.requester_id == customer.id or customer.email in fact.participants
                    or (access.scope(viewer) == "organisation"
                        and fact.organisation_id == viewer.organisation_id is not None))
                checked += 1
        assert checked > len(customers) * 10
        # the rule is not vacuous here: somebody sees another's ticket, somebody sees none
        seen = [sum(1 for f in facts.values()
                    if access.may_see(access_store.viewer_of(session, c.id), f))
                for c in customers]
        assert max(seen) > 2 and min(seen) == 0
    engine.dispose()
