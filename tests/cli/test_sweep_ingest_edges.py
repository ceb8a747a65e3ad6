"""Edges of `maildesk sweep --now` and `maildesk ingest` (issue #15).

A sweep at a simulated future time would close tickets early and send their
mails now, so it is refused unless it is a dry run, and a dry run says so.
Empty input is not a mail: refused before the store every time, never a
"duplicate" of the previous empty input.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, select

from maildesk.accept import smtp as smtp_listener
from maildesk.actions import agent as agent_actions
from maildesk.cli.common import EX_DATAERR
from maildesk.models import InboundMail, Outbox
from maildesk.schedule.sweep import run_sweep
from maildesk.secret import load_secret
from tests.conftest import Desk, hand_over
from tests.mailfactory import make_mail


def count(desk: Desk, table: type) -> int:
    with desk.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


def solved_ticket(desk: Desk) -> int:
    number = desk.ingest(make_mail(subject="Drucker"))[1]["ticket"]
    agent_actions.set_fields(desk.engine(), desk.settings, number, "agent@example.com",
                             status="solved", dispatch=hand_over(desk.settings))
    return number


def test_a_sweep_in_the_future_is_refused_and_changes_nothing(desk: Desk) -> None:
    number = solved_ticket(desk)
    mails = count(desk, Outbox)
    later = (datetime.now(UTC) + timedelta(days=15)).isoformat()
    result = desk.cli("sweep", "--now", later)
    assert result.exit_code == 2
    assert "in the future" in result.stderr and "--dry-run" in result.stderr
    assert desk.show(number)["status"] == "solved"  # not closed 15 days early
    assert count(desk, Outbox) == mails


def test_a_dry_run_in_the_future_says_it_is_one(desk: Desk) -> None:
    number = solved_ticket(desk)
    mails = count(desk, Outbox)
    later = (datetime.now(UTC) + timedelta(days=15)).isoformat()
    result = desk.cli("sweep", "--now", later, "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"dry run: #{number}: would do auto_close" in lines
    assert all(line.startswith("dry run: ") for line in lines), lines
    assert "nothing changed, nothing sent" in lines[-1]
    assert desk.show(number)["status"] == "solved" and count(desk, Outbox) == mails


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_dry_run_logs_as_a_dry_run(desk: Desk) -> None:
    solved_ticket(desk)
    later = datetime.now(UTC) + timedelta(days=15)
    logger, lines = logging.getLogger("maildesk.schedule.sweep"), Lines()
    # the CLI's setup_logging replaces the root handlers (caplog's among them)
    level, logger.level = logger.level, logging.INFO
    logger.addHandler(lines)
    try:
        run_sweep(desk.engine(), desk.settings, load_secret(desk.settings), later, True)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert lines.lines and all(m.startswith("dry run: ") and "would do" in m
                               for m in lines.lines), lines.lines


def test_a_sweep_now_or_in_the_past_still_runs(desk: Desk) -> None:
    result = desk.cli("sweep", "--now", datetime.now(UTC).isoformat())
    assert result.exit_code == 0 and "nothing due" in result.stdout
    assert "dry run" not in result.stdout


def test_empty_input_is_refused_every_time_not_a_duplicate(desk: Desk) -> None:
    for raw in (b"", b"", b"\n  \r\n"):
        result = desk.cli("ingest", input=raw)
        assert result.exit_code == EX_DATAERR, result.output
        assert "empty input" in result.stderr
        assert "duplicate" not in result.stdout
    assert count(desk, InboundMail) == 0  # nothing kept, so nothing to be a duplicate of


def test_an_empty_smtp_data_is_refused_before_the_store() -> None:
    stored: list[object] = []

    async def store(incoming: object) -> object:
        stored.append(incoming)
        raise AssertionError("an empty mail must not reach the store")

    handler = smtp_listener.MaildeskHandler(lambda a: True, store, "smtp",
                                            smtp_listener.ListenerStats())
    envelope = SimpleNamespace(original_content=b"\r\n", mail_from="a@kunde.de",
                               rcpt_tos=["support@example.com"])
    for _ in range(2):
        reply = asyncio.run(handler.handle_DATA(None, None, envelope))  # type: ignore[arg-type]
        assert reply == smtp_listener.EMPTY and reply.startswith("554 ")
    assert stored == []
