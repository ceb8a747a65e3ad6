"""A bounce of our mail (issue #15): the customer is marked bouncing with the
time and the bounce's reason, the ticket says where mail was not sent, the
mark expires after notify.bounce_expiry_days, and it ends when the customer
writes again or an agent clears it (time and reason with it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from maildesk.actions import agent as agent_actions
from maildesk.models import Customer, Outbox, Ticket
from maildesk.tickets.notices import still_bouncing
from tests.conftest import Desk, hand_over
from tests.mailfactory import make_mail
from tests.process.test_threading_golden import seed_ticket

DSN = Path(__file__).parents[1] / "mails" / "threading" / "dsn_for_our_mail.eml"
ERIKA = "erika@kunde.de"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


# -- the pure rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("bouncing", "days_ago", "expected"), [
    (False, 1, False),      # not bouncing at all
    (True, 1, True),        # a fresh bounce stops mail
    (True, 59, True),
    (True, 60, False),      # expired: tried again
    (True, None, True),     # a mark from before bounces had a time
])  # fmt: skip
def test_a_bounce_expires_after_the_configured_days(bouncing: bool, days_ago: int | None,
                                                    expected: bool) -> None:
    at = None if days_ago is None else NOW - timedelta(days=days_ago)
    assert still_bouncing(bouncing, at, NOW, 60) is expected


def test_naive_times_from_sqlite_count_as_utc() -> None:
    naive = (NOW - timedelta(days=61)).replace(tzinfo=None)
    assert still_bouncing(True, naive, NOW, 60) is False


# -- through ingest, the CLI and the notices -------------------------------------------------


def bounce(desk: Desk) -> None:
    values = seed_ticket(desk, "open")
    raw = DSN.read_bytes().replace(b"{{our_message_id}}", values["our_message_id"].encode())
    code, out = desk.ingest(raw)
    assert code == 0 and out["reason"] == "bounce", out


def customer(desk: Desk) -> dict:
    with desk.engine().connect() as conn:
        return dict(conn.execute(select(Customer.__table__).where(
            Customer.__table__.c.email == ERIKA)).one()._mapping)


def mails_to_erika(desk: Desk) -> list[str]:
    with desk.engine().connect() as conn:
        return [r.kind for r in conn.execute(select(Outbox.__table__).where(
            Outbox.__table__.c.to_addrs == ERIKA).order_by(Outbox.__table__.c.id))]


def test_a_bounce_is_marked_with_time_and_reason_and_shown(desk: Desk) -> None:
    bounce(desk)
    row = customer(desk)
    assert row["bouncing"] and row["bounced_at"] is not None
    assert "5.1.1" in row["bounce_reason"]
    shown = desk.cli("tickets", "show", "10001").stdout
    assert f"not sent to {ERIKA}: address bouncing since " in shown
    assert "5.1.1" in shown.split("not sent to", 1)[1].splitlines()[0]
    requester = desk.show(10001)["requester"]
    assert requester["bouncing"] is True and "5.1.1" in requester["bounce_reason"]
    assert [e for e in desk.show(10001)["events"] if e["field"] == "bouncing"
            and "5.1.1" in (e["new"] or "")]
    profile = desk.cli("customers", "show", ERIKA).stdout
    assert "bouncing: yes since " in profile and "5.1.1" in profile


def bounced_days_ago(desk: Desk, days: int) -> None:
    with desk.engine().begin() as conn:
        conn.execute(update(Customer.__table__).where(Customer.__table__.c.email == ERIKA)
                     .values(bounced_at=datetime.now(UTC) - timedelta(days=days)))


@pytest.mark.parametrize(("days", "mailed"), [(59, False), (61, True)])
def test_an_expired_bounce_gets_the_automatic_notice_again(desk: Desk, days: int,
                                                           mailed: bool) -> None:
    bounce(desk)
    bounced_days_ago(desk, days)
    assert ("not sent to" in desk.cli("tickets", "show", "10001").stdout) is not mailed
    result = desk.cli("tickets", "set", "10001", "--status", "closed")
    assert result.exit_code == 0, result.output
    assert ("closed" in mails_to_erika(desk)) is mailed


@pytest.mark.parametrize(("days", "mailed"), [(59, False), (61, True)])
def test_the_sweep_reminds_an_expired_bounce_again(desk: Desk, days: int,
                                                   mailed: bool) -> None:
    bounce(desk)
    bounced_days_ago(desk, days)
    agent_actions.set_fields(desk.engine(), desk.settings, 10001, "agent@example.com",
                             status="pending", dispatch=hand_over(desk.settings))
    with desk.engine().begin() as conn:
        conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == 10001)
                     .values(pending_since=datetime.now(UTC) - timedelta(days=14)))
    result = desk.cli("sweep", "--json")
    assert result.exit_code == 0, result.output
    assert {"ticket": 10001, "action": "reminder_1"} in json.loads(result.stdout)["actions"]
    assert ("reminder_1" in mails_to_erika(desk)) is mailed


def test_the_customer_writing_again_clears_the_bounce(desk: Desk) -> None:
    bounce(desk)
    code, out = desk.ingest(make_mail(subject="Neue Anfrage", sender=f"Erika <{ERIKA}>"))
    assert code == 0 and out["action"] == "created"
    row = customer(desk)
    assert (row["bouncing"], row["bounced_at"], row["bounce_reason"]) == (False, None, "")
    assert "acknowledgement" in mails_to_erika(desk)  # told again at once
    assert [e for e in desk.show(out["ticket"])["events"]
            if e["field"] == "bouncing" and "wrote again" in (e["new"] or "")]


def test_an_agent_clears_the_bounce_with_time_and_reason(desk: Desk) -> None:
    bounce(desk)
    assert customer(desk)["bounced_at"] is not None
    result = desk.cli("customers", "set", ERIKA, "--clear-bouncing")
    assert result.exit_code == 0, result.output
    row = customer(desk)
    assert (row["bouncing"], row["bounced_at"], row["bounce_reason"]) == (False, None, "")
    shown = json.loads(desk.cli("customers", "show", ERIKA, "--json").stdout)
    assert shown["bouncing"] is False and shown["bounced_at"] is None
    assert "not sent to" not in desk.cli("tickets", "show", "10001").stdout
