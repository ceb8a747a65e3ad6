"""Held mail (issue #12 §3): every mail that became no ticket is listed
with its reason, can be recovered into a ticket (or onto its ticket) with
notifications, deleted, and is purged after held.keep_days."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from maildesk.process.service import MailProcessor
from maildesk.schedule.sweep import run_sweep
from maildesk.secret import load_secret
from tests.conftest import Desk
from tests.mailfactory import make_mail

OUT_OF_OFFICE = {"Auto-Submitted": "auto-replied"}


def held(desk: Desk, *args: str) -> list[dict]:
    result = desk.cli("held", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def outbox_kinds(desk: Desk) -> list[tuple[str, int]]:
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    return sorted((r["kind"], r["ticket"]) for r in rows)


def recover(desk: Desk, *args: str) -> tuple[int, list[dict]]:
    result = desk.cli("held", "recover", *args)
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def test_an_auto_reply_is_held_and_recovered_into_a_ticket_with_notifications(
        desk: Desk) -> None:
    """A real request that a client marked Auto-Submitted (the mistake a
    mature desk lets a person undo)."""
    raw = make_mail(subject="Bitte Rückruf", sender="Hans <hans@kunde.de>",
                    extra_headers=OUT_OF_OFFICE)
    code, out = desk.ingest(raw)
    assert (code, out["action"], out["ticket"]) == (0, "ignored", None)
    assert outbox_kinds(desk) == []
    (entry,) = held(desk)
    assert (entry["reason"], entry["sender"], entry["subject"], entry["state"]) == (
        "auto_reply", "hans@kunde.de", "Bitte Rückruf", "held")
    assert entry["ticket"] is None and entry["detail"]

    code, lines = recover(desk, str(entry["id"]), "--by", "ops@example.com")
    assert code == 0
    (line,) = lines
    assert line["action"] == "created" and line["held"] == entry["id"]
    number = line["ticket"]
    assert ("acknowledgement", number) in outbox_kinds(desk)
    ticket = desk.show(number)
    assert ticket["requester"]["email"] == "hans@kunde.de"
    assert any(e["actor"] == "ops@example.com" and "recovered" in (e["new"] or "")
               for e in ticket["events"])
    assert held(desk) == []
    (done,) = held(desk, "--state", "recovered")
    assert (done["resolved_by"], done["result"]) == ("ops@example.com", f"created #{number}")

    code, lines = recover(desk, str(entry["id"]))  # twice: nothing more happens
    assert code == 1 and "not held" in lines[0]["reason"]
    assert len(desk.list()) == 1
    assert desk.ingest(raw)[1]["action"] == "duplicate"  # a redelivery stays a duplicate


def test_an_auto_reply_noted_on_its_ticket_is_recovered_onto_it(desk: Desk) -> None:
    code, out = desk.ingest(make_mail(subject="Heizung kalt", message_id="<start@kunde.de>"))
    number = out["ticket"]
    assert desk.cli("tickets", "set", str(number), "--status", "pending").exit_code == 0
    answer = make_mail(subject=f"AW: [#{number}] Heizung kalt", in_reply_to="<start@kunde.de>",
                       body="Die Heizung ist immer noch kalt.", extra_headers=OUT_OF_OFFICE)
    assert desk.ingest(answer)[1]["action"] == "ignored"
    assert desk.show(number)["status"] == "pending"  # an auto-reply never reopens
    (entry,) = held(desk)
    assert (entry["reason"], entry["ticket"]) == ("auto_reply", number)
    code, (line,) = recover(desk, str(entry["id"]))
    assert (code, line["action"], line["ticket"]) == (0, "appended", number)
    assert desk.show(number)["status"] == "open"  # now it is the customer's answer
    assert ("agent_notice_reply", number) in outbox_kinds(desk)


def test_two_recovers_at_once_make_one_ticket(desk: Desk) -> None:
    desk.ingest(make_mail(subject="Doppelt", extra_headers=OUT_OF_OFFICE))
    (entry,) = held(desk)
    ingestor = MailProcessor(desk.settings, desk.engine())
    results: list[str] = []
    barrier = threading.Barrier(2)

    def go(who: str) -> None:
        barrier.wait()
        results.append(ingestor.recover(entry["id"], who).action)

    threads = [threading.Thread(target=go, args=(f"ops{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["created", "failed"]
    assert len(desk.list()) == 1
    assert [k for k, _ in outbox_kinds(desk)].count("acknowledgement") == 1


def test_delete_discards_the_raw_bytes_and_a_redelivery_stays_a_duplicate(desk: Desk) -> None:
    raw = make_mail(subject="Newsletter", extra_headers={"List-Id": "<news.kunde.de>",
                                                         "Precedence": "list"})
    desk.ingest(raw)
    (entry,) = held(desk)
    assert desk.cli("inbound", "raw", str(entry["id"])).stdout_bytes == raw
    result = desk.cli("held", "delete", str(entry["id"]))
    assert result.exit_code == 0 and json.loads(result.stdout)["deleted"] is True
    gone = desk.cli("inbound", "raw", str(entry["id"]))
    assert gone.exit_code == 1 and "deleted" in gone.stderr
    assert held(desk) == [] and held(desk, "--state", "deleted")[0]["id"] == entry["id"]
    assert recover(desk, str(entry["id"]))[0] == 1 and desk.list() == []
    assert desk.ingest(raw)[1]["action"] == "duplicate"
    again = desk.cli("held", "delete", str(entry["id"]))
    assert again.exit_code == 1 and "not held" in again.stdout


def test_bulk_recover_by_reason(desk: Desk) -> None:
    for n in range(3):
        desk.ingest(make_mail(subject=f"Abwesend {n}", sender=f"a{n}@kunde.de",
                              extra_headers=OUT_OF_OFFICE))
    desk.ingest(make_mail(subject="Undelivered Mail Returned to Sender",
                          sender="MAILER-DAEMON@mx.kunde.de"))
    reasons = sorted(h["reason"] for h in held(desk))
    assert reasons == ["auto_reply"] * 3 + ["bounce"]
    assert desk.cli("held", "recover", "--reason", "auto_reply").exit_code == 64  # needs --all
    code, lines = recover(desk, "--all", "--reason", "auto_reply")
    assert code == 0 and [line["action"] for line in lines] == ["created"] * 3
    assert [h["reason"] for h in held(desk)] == ["bounce"]
    assert len(desk.list()) == 3


def test_unrecovered_held_mail_is_purged_after_keep_days(desk: Desk) -> None:
    desk.ingest(make_mail(subject="Alt", extra_headers=OUT_OF_OFFICE))
    (entry,) = held(desk)
    # `maildesk sweep --now` refuses the future: the sweep itself at a later time
    secret = load_secret(desk.settings)
    soon = datetime.now(UTC) + timedelta(days=29)
    report = run_sweep(desk.engine(), desk.settings, secret, soon)
    assert report.held_purged == 0 and len(held(desk)) == 1
    later = datetime.now(UTC) + timedelta(days=31)
    report = run_sweep(desk.engine(), desk.settings, secret, later)
    assert report.held_purged == 1
    assert held(desk) == [] and held(desk, "--state", "purged")[0]["id"] == entry["id"]
    assert desk.cli("inbound", "raw", str(entry["id"])).exit_code == 1
    assert recover(desk, str(entry["id"]))[0] == 1


def test_a_held_agent_mail_recovered_is_relayed_and_applied(desk: Desk) -> None:
    """The agent wrote from their phone to the plain support address: held
    as unverified; a person who checked it with the agent recovers it."""
    number = desk.ingest(make_mail(subject="Heizung kalt"))[1]["ticket"]
    answer = make_mail(subject=f"Re: [#{number}] Heizung kalt", sender="agent@example.com",
                       body="#priority high\n\nDer Techniker kommt morgen.\n")
    assert desk.ingest(answer)[1]["action"] == "held"
    assert desk.show(number)["priority"] != "high"
    (entry,) = held(desk, "--reason", "unverified_agent")
    code, (line,) = recover(desk, str(entry["id"]))
    assert (code, line["action"], line["ticket"]) == (0, "appended", number)
    ticket = desk.show(number)
    assert ticket["priority"] == "high"
    assert ("agent_reply", number) in outbox_kinds(desk)
    assert ticket["messages"][-1]["authenticity"].startswith("recovered from held mail")


def test_held_mail_without_a_sender_cannot_be_recovered(desk: Desk) -> None:
    """A bounce from the mailer daemon with no usable sender stays held."""
    raw = make_mail(subject="Undelivered Mail Returned to Sender", sender="",
                    extra_headers={"Auto-Submitted": "auto-replied", "Return-Path": "<>"})
    out = desk.ingest(raw)[1]
    if not held(desk):  # rejected before any filter: nothing to hold
        assert out["action"] == "rejected"
        return
    (entry,) = held(desk)
    code, (line,) = recover(desk, str(entry["id"]))
    assert code == 1 and "cannot be recovered" in line["reason"]
    assert held(desk)[0]["state"] == "held"
