"""The systemd unit files in config/ pass `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CONFIG = REPO / "config"
UNITS = sorted(CONFIG.glob("*.service"))
INSTALLED = "/opt/maildesk/.venv/bin/maildesk"


def test_there_is_a_serve_unit_with_hardening() -> None:
    text = (CONFIG / "maildesk.service").read_text()
    for line in ("Type=notify", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "User=maildesk", "ReadWritePaths=/var/lib/maildesk",
                 "serve"):
        assert line in text


def test_the_units_and_the_pipe_share_one_system_user() -> None:
    """Postfix's pipe runs `maildesk ingest` as user=maildesk outside the
    units: a DynamicUser= unit's data dir would be out of its reach."""
    sysusers = (CONFIG / "sysusers.d" / "maildesk.conf").read_text()
    assert any(line.split()[:2] == ["u", "maildesk"] for line in sysusers.splitlines())
    for unit in UNITS:
        text = unit.read_text()
        assert "User=maildesk" in text and "\nDynamicUser=yes" not in text, unit.name
    assert "user=maildesk " in (CONFIG / "postfix-pipe.example").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (the issue asks: if available)")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    # The unit names the installed path; verify checks that it exists.
    maildesk = Path(sys.executable).parent / "maildesk"
    assert maildesk.exists()
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(maildesk)))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if unit.name in line or "Unknown" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
