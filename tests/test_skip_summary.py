"""pytest's summary names what skipped tests need (tests/conftest.py's
pytest_terminal_summary): on a fresh machine over a hundred tests skip for
want of Dovecot and Chromium, and a bare "170 skipped" does not say so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, skip_groups


def test_reasons_are_grouped_and_given_their_fix() -> None:
    groups = skip_groups(["Skipped: dovecot is not installed (apt-get install dovecot-imapd)"] * 3
                         + ["Skipped: MAILDESK_TEST_DATABASE_URL not set (PostgreSQL tests)"])
    assert groups == [
        (3, "dovecot is not installed (apt-get install dovecot-imapd)"),
        (1, "MAILDESK_TEST_DATABASE_URL not set (PostgreSQL tests) "
            "(set it to a PostgreSQL database, see the README)")]
    assert skip_groups([]) == []


def test_a_run_with_skips_ends_with_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_terminal_summary  # noqa: F401\n")
    (tmp_path / "test_needs.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('n', range(3))\n"
        "def test_imap(n):\n"
        "    pytest.skip('dovecot is not installed (apt-get install dovecot-imapd)')\n"
        "def test_browser():\n"
        "    pytest.skip('no chromium at /usr/bin/chromium: apt-get install chromium')\n"
        "def test_runs():\n"
        "    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-p", "no:randomly", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "skipped tests, by what they need" in out
    assert "skipped 3 tests: dovecot is not installed (apt-get install dovecot-imapd)" in out
    assert "skipped 1 test: no chromium at /usr/bin/chromium: apt-get install chromium" in out
