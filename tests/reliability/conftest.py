"""Fixtures for the reliability tests."""

from __future__ import annotations

import pytest

from maildesk.service import Ingestor
from tests.conftest import Desk


@pytest.fixture
def fuzz_ingestor(desk: Desk) -> Ingestor:
    """One migrated database for all of a fuzz test's examples."""
    return Ingestor(desk.settings, desk.engine())
