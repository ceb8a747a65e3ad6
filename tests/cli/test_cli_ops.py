"""What ops meet: schema checks, exit codes, tables, import of mailboxes."""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from maildesk.cli.app import main
from tests.conftest import REPO, Desk
from tests.mailfactory import OUTLOOK_GERMAN, make_mail


def run(env: dict[str, str], *args: str, input: bytes | None = None):
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def fresh_env(tmp_path: Path, url: str | None = None) -> dict[str, str]:
    env = {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"),
           "MAILDESK_DATA_DIR": str(tmp_path / "var")}
    if url:
        env["MAILDESK_DATABASE__URL"] = url
    return env


def test_commands_say_when_the_schema_is_missing(tmp_path: Path, database_url: str) -> None:
    env = fresh_env(tmp_path, database_url)
    result = run(env, "tickets", "list")
    assert result.exit_code == 78
    assert "maildesk db upgrade" in result.stderr
    ingest = run(env, "ingest", input=make_mail())
    assert ingest.exit_code == 75  # the MTA keeps the mail and retries
    assert "db upgrade" in ingest.stderr
    upgrade = run(env, "db", "upgrade")
    assert upgrade.exit_code == 0 and "upgraded from empty" in upgrade.stdout
    again = run(env, "db", "upgrade")
    assert again.exit_code == 0 and "up to date" in again.stdout
    assert run(env, "tickets", "list").exit_code == 0


def test_unreachable_database_makes_ingest_exit_75(tmp_path: Path) -> None:
    env = fresh_env(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    result = run(env, "ingest", input=make_mail())
    assert result.exit_code == 75
    assert "retry" in result.stderr


def test_invalid_config_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "maildesk.toml"
    path.write_text("[limits]\nmax_attachment_bytes = -5\n")
    result = run({"MAILDESK_DATA_DIR": str(tmp_path)}, "--config", str(path), "tickets", "list")
    assert result.exit_code == 78
    assert str(path) in result.stderr and "limits.max_attachment_bytes" in result.stderr


def test_real_pipe_process_with_stdin(desk: Desk) -> None:
    """The way Postfix runs it: a process, the mail on stdin, --json on stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "maildesk", "ingest", "--json",
         "--recipient", "support@example.com"],
        input=OUTLOOK_GERMAN, capture_output=True, env={**desk.env, "PATH": "/usr/bin:/bin"},
        cwd=REPO, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"action": "created", "ticket": 10001, "reason": None}


def test_tickets_list_table_json_status_and_search(desk: Desk) -> None:
    desk.ingest(make_mail(subject="Heizung kalt", sender="a@firma.de"))
    desk.ingest(make_mail(subject="Wasser tropft", sender="b@firma.de", body="Zähler 4711\n"))
    table = desk.cli("tickets", "list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NUMBER", "STATUS", "TYPE"]
    assert "#10002" in lines[1] and "Wasser tropft" in lines[1]
    assert [t["number"] for t in desk.list("--search", "heizung")] == [10001]
    assert [t["number"] for t in desk.list("--search", "4711")] == [10002]
    assert [t["number"] for t in desk.list("--search", "#10002")] == [10002]
    assert desk.list("--status", "closed") == []
    row = desk.list()[0]
    for key in ("number", "subject", "status", "request_type", "priority", "channel",
                "requester", "organisation", "participants", "follow_up_of",
                "created_at", "updated_at"):
        assert key in row
    assert row["created_at"].endswith("+00:00")


def test_tickets_show_text_and_unknown_number(desk: Desk) -> None:
    desk.ingest(OUTLOOK_GERMAN)
    shown = desk.cli("tickets", "show", "10001")
    assert shown.exit_code == 0
    assert "Prüfbericht März.pdf" in shown.stdout and "status: new" in shown.stdout
    missing = desk.cli("tickets", "show", "99999")
    assert missing.exit_code == 1 and "no ticket #99999" in missing.stderr


def _fill(box: mailbox.Mailbox, count: int) -> list[bytes]:
    mails = [make_mail(subject=f"Migration {i}", message_id=f"<mig-{i}@alt.de>")
             for i in range(count)]
    for raw in mails:
        box.add(raw)
    box.flush()
    return mails


def test_import_mbox_and_rerun_reports_duplicates(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "alt.mbox"
    _fill(mailbox.mbox(path), 25)
    first = desk.cli("import", str(path), "--json", "--batch", "10")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["outcomes"] == {"created": 25}
    second = desk.cli("import", str(path), "--json")
    assert json.loads(second.stdout)["outcomes"] == {"duplicate": 25}
    assert len(desk.list("--limit", "1000")) == 25


def test_import_maildir_with_progress_and_summary(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    _fill(box, 5)
    box.add(b"")  # an empty file in a Maildir: kept and reported, not fatal
    result = desk.cli("import", str(path), "--progress")
    assert result.exit_code == 0, result.output
    assert "imported 6 messages from maildir" in result.stdout
    assert "5 created" in result.stdout and "1 rejected" in result.stdout
    assert "import" in result.stderr  # the progress bar


def test_import_of_a_plain_directory_is_a_clear_error(desk: Desk, tmp_path: Path) -> None:
    result = desk.cli("import", str(tmp_path))
    assert result.exit_code != 0
    assert "not a Maildir" in result.stderr
