"""`maildesk import` over a mixed set of real-world and malformed mails
writes no traceback to the log at the default level (issue 19): a handled
fallback is one line; `--verbose` adds the tracebacks."""

from __future__ import annotations

import mailbox
import subprocess
import sys
from pathlib import Path

import pytest

from maildesk.mail import parse as parse_module
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail

MAILS = REPO / "tests" / "mails"


def _mixed_maildir(where: Path) -> int:
    box = mailbox.Maildir(where, create=True)
    count = 0
    for path in sorted(MAILS.rglob("*.eml")):  # golden, bounces, replies
        box.add(path.read_bytes())
        count += 1
    for i in range(50):
        box.add(make_mail(subject=f"Anfrage {i}", message_id=f"<mixed-{i}@kunde.de>"))
        count += 1
    box.add(b"\x00\xff not a mail at all \r\n\r\n")
    box.add(b"Subject: =?utf-8?B?broken\r\n\r\nno from, no date")
    return count + 2


def test_an_import_of_mixed_mails_writes_no_traceback(desk: Desk, tmp_path: Path) -> None:
    count = _mixed_maildir(tmp_path / "mixed")
    assert count > 250
    done = subprocess.run([sys.executable, "-m", "maildesk", "import", str(tmp_path / "mixed"),
                           "--no-progress"], capture_output=True, cwd=REPO, timeout=300,
                          env=desk.env)
    assert done.returncode in (0, 65), done.stderr[-2000:]
    assert b"Traceback" not in done.stderr, done.stderr.decode()[-3000:]
    assert desk.show(10001)["number"] == 10001


def test_verbose_shows_the_traceback_behind_a_fallback(
        desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes) -> None:
        raise ValueError("boom in the header walk")

    monkeypatch.setattr(parse_module.mailparser, "parse_from_bytes", explode)
    box = mailbox.Maildir(tmp_path / "one", create=True)
    box.add(make_mail(subject="Heizung", message_id="<one@kunde.de>"))
    box.add(make_mail(subject="Drucker", message_id="<two@kunde.de>"))
    quiet = desk.cli("import", str(tmp_path / "one"), "--no-progress")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr.count("mail-parser failed") == 2
    assert "Traceback" not in quiet.stderr
    again = mailbox.Maildir(tmp_path / "two", create=True)
    again.add(make_mail(subject="Heizung 2", message_id="<three@kunde.de>"))
    loud = desk.cli("import", str(tmp_path / "two"), "--no-progress", "--verbose")
    assert loud.exit_code == 0, loud.output
    assert "Traceback" in loud.stderr and "boom in the header walk" in loud.stderr
