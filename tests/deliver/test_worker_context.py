"""The sender reads a ticket's newest messages once per mail and takes the
thread, its Message-IDs, the latest customer text and asked_at from them;
it must find exactly what the single-purpose queries find, however the
messages lie (long threads, internal notes, mails without an id, no
answer yet)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from maildesk.deliver import mailcontext
from maildesk.deliver.mailcontext import MailBuilder
from maildesk.deliver.sender import Sender
from maildesk.models import Message, Outbox, Ticket, utcnow
from tests.conftest import Desk
from tests.mailfactory import make_mail

LAYOUTS = {
    "none": [],
    "short": ["in", "out", "in"],
    "notes": ["in", "internal", "out", "internal", "internal", "in", "internal"],
    "long": ["in", "out"] * 12,
    "only_in": ["in"] * 25,
    "only_out_after_many_in": ["in"] * 3 + ["out"] + ["in"] * 14,
    "ids_missing": ["in", "out", "in-noid", "out-noid"] * 8,
    "notes_hide_in": ["in"] + ["internal"] * 3 + ["out"] * 15,
}


def _expected(sender: Sender, connection: Any, row: dict[str, Any],
              ticket: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """_context and _thread_ids outside fields(): every value by its own
    query."""
    mails = sender.mails
    return mails._context(connection, row, ticket), mails._thread_ids(connection, ticket["id"])


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_recent_messages_give_what_the_queries_give(desk: Desk, layout: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    desk.ingest(make_mail(subject="Verlauf"))
    engine = desk.engine()
    base = utcnow() - timedelta(days=1)
    with engine.begin() as connection:
        ticket_id = connection.execute(select(Ticket.__table__.c.id)).scalar_one()
        for i, kind in enumerate(LAYOUTS[layout]):
            direction = kind.removesuffix("-noid")
            connection.execute(insert(Message.__table__), {
                "ticket_id": ticket_id, "direction": direction,
                "message_id": "" if kind.endswith("-noid") else f"m{i}@example.org",
                "from_addr": f"{direction}{i}@example.org", "author": "",
                "text": f"text {i}", "text_display": "" if i % 3 else f"display {i}",
                "created_at": base + timedelta(minutes=i),
            })
        rows = [dict(r._mapping) for r in connection.execute(select(Outbox.__table__))]
    sender = Sender(desk.settings, engine)
    built: dict[str, Any] = {}
    real_context = MailBuilder._context

    def spy(self: MailBuilder, connection: Any, row: dict[str, Any],
            ticket: dict[str, Any]) -> dict[str, Any]:
        built["context"] = real_context(self, connection, row, ticket)
        built["ticket"] = ticket
        return built["context"]

    for row in rows:
        for message_row in (row["message_row_id"], None):
            row = {**row, "message_row_id": message_row}
            monkeypatch.setattr(MailBuilder, "_context", spy)
            fields, _, _ = sender.mails.fields(row)
            monkeypatch.setattr(MailBuilder, "_context", real_context)
            with engine.connect() as connection:
                context, ids = _expected(sender, connection, row, built["ticket"])
            assert built["context"] == context
            expected_refs = [f"ticket-{built['ticket']['number']}@"
                             f"{desk.settings.message_id_domain}", *ids]
            assert [r.strip("<>") for r in fields["references"]] == expected_refs
    assert mailcontext.RECENT >= mailcontext.THREAD_DEPTH + 1
    engine.dispose()
