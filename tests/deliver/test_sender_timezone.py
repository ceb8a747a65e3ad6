"""Times in the mails the sender sends are in calendar.timezone, as in the
portal's pages and in `maildesk check`: a desk in Tokyo must not tell its
customers Berlin's time (the sender's Renderer used Berlin whatever the
config said)."""

from __future__ import annotations

import json

import pytest

from maildesk.config import load_settings
from maildesk.deliver.sender import Sender
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail  # its Date: 2 Nov 2026, 09:30 UTC
from tests.mailsink import Sink


@pytest.mark.parametrize(("zone", "shown"), [("Asia/Tokyo", "02.11.2026, 18:30 Uhr"),
                                             ("America/New_York", "02.11.2026, 04:30 Uhr")])
def test_the_quoted_thread_of_a_sent_reply_is_in_the_calendars_zone(
        desk: Desk, sink: Sink, zone: str, shown: str) -> None:
    desk.env.update({"MAILDESK_CALENDAR__TIMEZONE": zone, "MAILDESK_RELAY__HOST": "127.0.0.1",
                     "MAILDESK_RELAY__PORT": str(sink.port)})
    desk.settings = load_settings(REPO / "maildesk.toml", desk.env)
    number = desk.ingest(make_mail(subject="Heizung", sender="Erika <erika@kunde.de>"))[1][
        "ticket"]
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                      "--text", "Wir schicken jemanden vorbei.")
    assert result.exit_code == 0, result.output
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    (reply,) = [r["id"] for r in rows if r["kind"] == "agent_reply"]

    Sender(desk.settings, desk.engine()).send(reply)  # what the worker runs for each row

    (mail,) = [m for m in sink.to("erika@kunde.de")
               if "Wir schicken jemanden vorbei." in m.get_body(("plain",)).get_content()]
    text = mail.get_body(("plain",)).get_content()
    assert "Bisheriger Verlauf" in text
    assert shown in text, text
    assert "10:30 Uhr" not in text  # Berlin's time of the same moment
