"""`maildesk import` over CPython's own email test data: every message gets
an outcome, and the outcomes add up to the number of messages."""

from __future__ import annotations

import json
import mailbox
import os
from pathlib import Path

import pytest

from tests.conftest import Desk


def corpus() -> Path | None:
    try:
        import test  # the stdlib's test package, where the build ships it
    except ImportError:
        return None
    path = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    return path if path.is_dir() else None


def test_cpython_email_corpus_imports_completely(desk: Desk, tmp_path: Path) -> None:
    data = corpus()
    if data is None:
        pytest.skip("this Python build ships no test_email/data")
    messages = sorted(p for p in data.iterdir() if p.name.startswith("msg_"))
    assert len(messages) > 40
    box = mailbox.Maildir(tmp_path / "corpus", create=True)
    for path in messages:
        box.add(path.read_bytes())
    result = desk.cli("import", str(tmp_path / "corpus"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["total"] == len(messages)
    assert sum(summary["outcomes"].values()) == len(messages)
    assert "failed" not in summary["outcomes"], summary
