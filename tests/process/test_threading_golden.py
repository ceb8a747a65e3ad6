"""Golden threading cases (tests/mails/threading): a seeded ticket #10001
from erika@kunde.de with kollege@kunde.de in CC and one agent reply, put in
the status the case names; then the case's mail is piped into `maildesk
ingest` and the outcome compared with NAME.expected.json.

Placeholders in the .eml are filled from the seeded ticket, because our
Message-IDs are random and signed: {{our_message_id}}, {{reply_address}},
{{body_reference}}.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from maildesk.actions import agent as agent_actions
from maildesk.mail import tokens
from maildesk.models import Customer, Message
from maildesk.secret import load_secret
from tests.conftest import REPO, Desk, hand_over
from tests.mailfactory import make_mail

CASES = sorted((REPO / "tests" / "mails" / "threading").glob("*.eml"))


def seed_ticket(desk: Desk, status: str) -> dict[str, str]:
    first = make_mail(subject="Heizung im 2. OG kalt", sender="Erika Mustermann <erika@kunde.de>",
                      cc="Klaus Kollege <kollege@kunde.de>", message_id="<start@kunde.de>")
    assert desk.ingest(first)[1]["action"] == "created"
    engine = desk.engine()
    dispatch = hand_over(desk.settings)
    result = agent_actions.reply(engine, desk.settings, 10001, "agent@example.com",
                                 "Wir schicken morgen einen Techniker.", dispatch=dispatch)
    if status != "open":
        if status == "closed":
            agent_actions.set_fields(engine, desk.settings, 10001, "agent@example.com",
                                     status="solved", dispatch=dispatch)
        agent_actions.set_fields(engine, desk.settings, 10001, "agent@example.com",
                                 status=status, dispatch=dispatch)
    secret = load_secret(desk.settings)
    return {
        "our_message_id": result.message_id,
        "reply_address": result.reply_to,
        "body_reference": tokens.body_reference(secret, 10001),
    }


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_threading_case(desk: Desk, case: Path) -> None:
    spec = json.loads(case.with_name(case.stem + ".expected.json").read_text())
    expect = spec["expect"]
    values = seed_ticket(desk, spec["setup"]["status"])
    raw = case.read_bytes()
    for key, value in values.items():
        raw = raw.replace(("{{" + key + "}}").encode(), value.encode())
    code, out = desk.ingest(raw)
    assert code == 0
    assert out["action"] == expect["action"], out
    assert out["ticket"] == expect["ticket"]
    if "reason" in expect:
        assert out["reason"] == expect["reason"]
    if "followup_of" in expect:
        assert out["followup_of"] == expect["followup_of"]
    old = desk.show(10001)
    assert old["status"] == expect["status_after"]
    assert len(desk.list()) == expect["tickets"]
    if "event" in expect:
        assert expect["event"] in [e["field"] for e in old["events"]]
    if "internal_messages" in expect:
        internal = [m for m in old["messages"] if m["direction"] == "internal"]
        assert len(internal) == expect["internal_messages"]
    if expect["action"] in ("created", "followup"):
        new = desk.show(out["ticket"])
        assert new["status"] == "new"
        if "new_ticket_messages" in expect:
            # nothing of the old ticket leaks into the new one
            assert len(new["messages"]) == expect["new_ticket_messages"]
            assert "Techniker" not in json.dumps(new)
        if "new_ticket_requester" in expect:
            assert new["requester"]["email"] == expect["new_ticket_requester"]
        if "new_ticket_subject" in expect:
            assert new["subject"] == expect["new_ticket_subject"]
            assert new["follow_up_of"] == expect["followup_of"]
        if "new_ticket_participants" in expect:
            assert [p["email"] for p in new["participants"]] == expect["new_ticket_participants"]
    if "bouncing" in expect:
        with Session(desk.engine()) as session:
            bouncing = session.exec(select(Customer.email).where(Customer.bouncing)).all()
        assert sorted(bouncing) == expect["bouncing"]
    if expect["action"] == "appended":
        with Session(desk.engine()) as session:
            count = len(session.exec(select(Message).where(Message.direction == "in")).all())
        assert count == 2  # the first mail and this reply, on #10001
