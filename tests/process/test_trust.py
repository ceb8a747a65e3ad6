"""Nobody speaks as an agent without proof, a forged domain is held, and a
stranger holding one of our mails does not join its ticket (issue #12 §2),
end to end: mails in through the pipe, the real worker, a recording relay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from maildesk.config import load_settings
from maildesk.mail import tokens
from maildesk.secret import load_secret
from tests.conftest import REPO, Desk
from tests.deliver.test_worker import mailing  # noqa: F401 — fixture
from tests.mailfactory import make_mail
from tests.mailsink import Sink, redis_url, sink  # noqa: F401 — fixtures

MX = "mx.example.com"
PHISH = "https://login.phish.example/"


@pytest.fixture
def trusting(mailing: tuple[Desk, Sink]) -> Iterator[tuple[Desk, Sink]]:  # noqa: F811
    """The desk behind an MTA (authserv-id mx.example.com) ops trust."""
    desk, box = mailing
    desk.env["MAILDESK_SECURITY__TRUSTED_AUTHSERV_IDS"] = json.dumps([MX])
    desk.settings = load_settings(REPO / "maildesk.toml", desk.env)
    yield desk, box


def body(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def outbox(desk: Desk) -> list[dict]:
    return json.loads(desk.cli("outbox", "list", "--json").stdout)


def new_ticket(desk: Desk, box: Sink) -> tuple[int, EmailMessage]:
    code, out = desk.ingest(make_mail(subject="Heizung kalt", sender="Erika <erika@kunde.de>"))
    assert (code, out["action"]) == (0, "created")
    (notice,) = box.wait(1, "agent@example.com")
    box.wait(1, "erika@kunde.de")
    return out["ticket"], notice


def test_a_forged_agent_mail_is_held_never_relayed_and_applies_nothing(
        trusting: tuple[Desk, Sink]) -> None:
    """The issue's attack: From agent@example.com, Re: [#N], the envelope
    sender on a foreign domain, dmarc=fail by our MX, #assign and #priority
    lines and a phishing link."""
    desk, box = trusting
    number, _ = new_ticket(desk, box)
    before = desk.show(number)
    forged = make_mail(
        subject=f"Re: [#{number}] Heizung kalt", sender="Demo Agent <agent@example.com>",
        body=f"#assign agent@example.com\n#priority high\n\nBitte melden Sie sich an: {PHISH}\n",
        message_id="<forged@attacker.example>",
        extra_headers={"Authentication-Results":
                       f"{MX}; spf=fail smtp.mailfrom=attacker.example; "
                       "dmarc=fail (p=reject) header.from=example.com"})
    code, out = desk.ingest(forged, "--sender", "bounce@attacker.example")
    assert (code, out["action"], out["ticket"], out["reason"]) == (
        0, "held", number, "unverified_agent")

    after = desk.show(number)
    assert (after["priority"], after["assignee"], after["status"]) == (
        before["priority"], before["assignee"], before["status"])
    kept = after["messages"][-1]
    assert kept["direction"] == "internal" and PHISH in kept["text"]
    assert kept["authenticity"].startswith("unverified")
    shown = desk.cli("tickets", "show", str(number)).stdout
    assert "sender: unverified" in shown

    (told,) = box.wait(2, "agent@example.com")[1:]
    assert "Nicht übernommen" in str(told["Subject"])
    rows = outbox(desk)
    assert not [r for r in rows if "erika@kunde.de" in r["to"] and r["kind"] != "acknowledgement"]
    assert all(PHISH not in body(m) for m in box.to("erika@kunde.de"))

    held = json.loads(desk.cli("held", "list", "--json").stdout)
    assert [(h["reason"], h["ticket"], h["sender"]) for h in held] == [
        ("unverified_agent", number, "agent@example.com")]
    assert "held recover" in body(told) and str(held[0]["id"]) in body(told)


def test_the_agent_answering_their_notice_is_relayed(trusting: tuple[Desk, Sink]) -> None:
    """The proof maildesk controls: the notice's Reply-To is the agent's own."""
    desk, box = trusting
    number, notice = new_ticket(desk, box)
    secret = load_secret(desk.settings)
    assert tokens.ticket_of_agent_address(secret, str(notice["Reply-To"]),
                                          "agent@example.com") == number
    answer = make_mail(subject=f"AW: {notice['Subject']}", sender="agent@example.com",
                       to=str(notice["Reply-To"]), in_reply_to=str(notice["Message-ID"]),
                       body="#priority high\n\nBitte entlüften Sie den Heizkörper.\n")
    code, out = desk.ingest(answer)
    assert (code, out["action"]) == (0, "appended")
    assert desk.show(number)["priority"] == "high"
    replies = box.wait(2, "erika@kunde.de")
    assert "entlüften" in body(replies[-1])
    assert desk.show(number)["messages"][-1]["authenticity"] == f"agent reply address of #{number}"


def test_a_trusted_dmarc_pass_proves_an_agent_writing_to_the_plain_address(
        trusting: tuple[Desk, Sink]) -> None:
    desk, box = trusting
    number, _ = new_ticket(desk, box)
    answer = make_mail(subject=f"Re: [#{number}] Heizung kalt", sender="agent@example.com",
                       body="Der Techniker kommt morgen.\n",
                       extra_headers={"Authentication-Results":
                                      f"{MX}; dkim=pass header.d=example.com; "
                                      "dmarc=pass header.from=example.com"})
    assert desk.ingest(answer)[1]["action"] == "appended"
    assert "Techniker" in body(box.wait(2, "erika@kunde.de")[-1])


def test_a_customer_mail_failing_dmarc_is_held_and_answers_nobody(
        trusting: tuple[Desk, Sink]) -> None:
    desk, box = trusting
    number, _ = new_ticket(desk, box)
    forged = make_mail(subject=f"AW: [#{number}] Heizung kalt", sender="erika@kunde.de",
                       body="Bitte überweisen Sie die Kaution auf ein neues Konto.\n",
                       extra_headers={"Authentication-Results":
                                      f"{MX}; dmarc=fail header.from=kunde.de"})
    code, out = desk.ingest(forged)
    assert (code, out["action"], out["reason"]) == (0, "held", "dmarc_fail")
    assert len(desk.show(number)["messages"]) == 1
    held = json.loads(desk.cli("held", "list", "--reason", "dmarc_fail", "--json").stdout)
    assert len(held) == 1 and "dmarc=fail" in held[0]["detail"]


def test_a_stranger_quoting_our_mail_opens_her_own_ticket(mailing: tuple[Desk, Sink]) -> None:  # noqa: F811
    """Erika forwards the agent's answer to a third person, who writes to
    support quoting it (with its [ref:…] line): she gets a ticket of her
    own, and the next agent reply on Erika's ticket does not go to her."""
    desk, box = mailing
    number, _ = new_ticket(desk, box)
    assert desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                    "--text", "Der Zählerstand ist 4711.").exit_code == 0
    reply = box.wait(2, "erika@kunde.de")[-1]
    quoted = "\n".join("> " + line for line in body(reply).splitlines())
    third = make_mail(subject="WG: Zählerstand", sender="Dora Dritte <dora@andere.example>",
                      body=f"Gilt das auch für mich?\n\n{quoted}\n")
    code, out = desk.ingest(third)
    assert (code, out["action"]) == (0, "created") and out["ticket"] != number
    assert "dora@andere.example" not in json.dumps(desk.show(number))
    assert desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                    "--text", "Nachtrag").exit_code == 0
    box.wait(3, "erika@kunde.de")
    assert all("Nachtrag" not in body(m) for m in box.to("dora@andere.example"))
