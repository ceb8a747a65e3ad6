"""What `maildesk ingest` prints: Postfix's pipe transport logs the first
line of a command's output as the delivery status ("status=sent (delivered
via maildesk service (maildesk: created #10001))"), so stdout is exactly one
short line saying what became of the mail, and log lines go to stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maildesk.cli.mail import status_line
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail


def _ingest(desk: Desk, raw: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """As Postfix runs it: a process of its own, the mail on stdin."""
    return subprocess.run([sys.executable, "-m", "maildesk", "ingest", *extra],
                          input=raw, capture_output=True, cwd=REPO, timeout=60,
                          env={**desk.env, "PATH": "/usr/bin:/bin"})


def test_stdout_is_one_status_line_and_nothing_else_is_said(desk: Desk) -> None:
    """At the default log level the status line says it all: Postfix logs
    stdout and stderr together, joined into one line, as the status."""
    done = _ingest(desk, make_mail(subject="Drucker streikt"),
                   "--recipient", "support@example.com")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"maildesk: created #10001\n"
    assert done.stderr == b""


def test_the_status_line_comes_before_any_log_line(desk: Desk) -> None:
    """Postfix's pipe reads stdout and stderr as one stream: with every log
    line on (DEBUG) the status line is still the first."""
    done = subprocess.run([sys.executable, "-m", "maildesk", "ingest"], input=make_mail(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
                          timeout=60, env={**desk.env, "PATH": "/usr/bin:/bin",
                                           "MAILDESK_LOG__LEVEL": "DEBUG"})
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "maildesk: created #10001"
    assert any("inbound mail 1: created" in line for line in lines[1:])


def test_each_outcome_reads_as_a_status(desk: Desk) -> None:
    first = make_mail(subject="Heizung kalt", message_id="<first@kunde.de>")
    lines = []
    for raw in (first, first,
                make_mail(subject="Re: [#10001] Heizung kalt", message_id="<second@kunde.de>"),
                make_mail(subject="Abwesenheitsnotiz", message_id="<ooo@kunde.de>",
                          extra_headers={"Auto-Submitted": "auto-replied"})):
        result = desk.cli("ingest", input=raw)
        assert result.exit_code == 0, result.output
        assert result.stdout.count("\n") == 1, result.stdout
        lines.append(result.stdout.strip())
    assert lines[0] == "maildesk: created #10001"
    assert lines[1] == "maildesk: duplicate, already taken as #10001"
    assert lines[2] == "maildesk: added to #10001"
    assert lines[3].startswith("maildesk: ") and "auto_reply" in lines[3] and "held" in lines[3]


def test_json_on_request(desk: Desk) -> None:
    result = desk.cli("ingest", "--json", input=make_mail())
    assert json.loads(result.stdout) == {"action": "created", "ticket": 10001, "reason": None}


def test_status_lines_of_the_rarer_outcomes() -> None:
    assert status_line({"action": "followup", "ticket": 10007, "reason": None,
                        "followup_of": 10002}) == "maildesk: created #10007 (follow-up of #10002)"
    assert status_line({"action": "reopened", "ticket": 10003, "reason": None}) \
        == "maildesk: added to #10003, reopened"
    assert status_line({"action": "held", "ticket": None, "reason": "dmarc_fail"}) \
        == "maildesk: held (dmarc_fail)"
    assert status_line({"action": "rejected", "ticket": None, "reason": "empty input"}) \
        == "maildesk: rejected (empty input)"


def test_an_unwritable_data_dir_is_named(desk: Desk, tmp_path: Path) -> None:
    """The pipe's `user=` may not reach the unit's state directory: say
    which directory, not SQLite's "unable to open database file"."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root passes every mode check:
        locked = Path("/proc/1")  # no one may create files there
    done = subprocess.run([sys.executable, "-m", "maildesk", "ingest"], input=make_mail(),
                          capture_output=True, cwd=REPO, timeout=60,
                          env={**desk.env, "PATH": "/usr/bin:/bin",
                               "MAILDESK_DATA_DIR": str(locked)})
    assert done.returncode == 75, done.stderr  # the MTA keeps the mail and retries
    assert f"the data dir {locked} is not writable by user ".encode() in done.stderr
    assert b"mail not taken" in done.stderr
    assert done.stdout == b""


def test_a_stored_mail_is_taken_even_when_the_broker_cannot_be_reached(desk: Desk) -> None:
    """Once the mail is committed, a broker that is down must not turn into
    a non-zero exit: Postfix would bounce (or retry and duplicate) a mail
    that is already a ticket. The notifications wait in the outbox, and
    serve's sweep sends them; the operator reads one warning line."""
    env = {**desk.env, "MAILDESK_BROKER__URL": "redis://127.0.0.1:1/0",
           "MAILDESK_SECURITY__SECRET": "a-shared-secret-for-this-test"}
    done = subprocess.run([sys.executable, "-m", "maildesk", "ingest"],
                          input=make_mail(subject="Heizung kalt"), capture_output=True,
                          cwd=REPO, timeout=60, env={**env, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == b"maildesk: created #10001"
    warning = done.stderr.decode()
    assert "outbox" in warning and "Traceback" not in warning, warning
    assert desk.show(10001)["status"] == "new"
    with desk.engine().connect() as connection:
        queued = connection.exec_driver_sql(
            "SELECT count(*) FROM outbox WHERE state = 'queued'").scalar_one()
    assert queued >= 1  # the acknowledgement waits for the sweep


def test_a_broker_that_cannot_even_be_made_does_not_fail_a_stored_mail(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """As when the pipe's Python lacks a module redis needs: the mail is a
    ticket already, so ingest says so and exits 0."""
    from maildesk.deliver import broker

    def broken(_settings: object) -> None:
        raise ImportError("No module named 'async_timeout'")

    monkeypatch.setattr(broker, "make_broker", broken)
    desk.env["MAILDESK_BROKER__URL"] = "redis://127.0.0.1:1/0"
    desk.env["MAILDESK_SECURITY__SECRET"] = "a-shared-secret-for-this-test"
    result = desk.cli("ingest", input=make_mail(subject="Heizung kalt"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "maildesk: created #10001"
    assert "async_timeout" in result.stderr and "Traceback" not in result.stderr
