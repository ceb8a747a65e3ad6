"""Fixtures for the reliability tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from maildesk.process.service import MailProcessor
from tests.conftest import Desk
from tests.reliability.services import reap


@pytest.fixture
def fuzz_ingestor(desk: Desk) -> MailProcessor:
    """One migrated database for all of a fuzz test's examples."""
    return MailProcessor(desk.settings, desk.engine())


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Daemons a fault test started. A test stops them itself (and checks
    their exit codes); whatever still runs when it ends, because an
    assertion failed half-way, is killed here so that no serve or worker
    outlives its test and keeps ports, files or a mount busy."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        reap(process)
