"""Fixtures the web tests share: the web server on a desk (`site`), and
the portal's login answer without its minimum time (`quick_answers`, for
modules that log in often; tests/web/test_portal_login.py measures the
real one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from maildesk.web.portal import auth
from tests.conftest import Desk
from tests.web.test_pages import Site, _site, settings_with


@pytest.fixture
async def site(desk: Desk) -> AsyncIterator[Site]:
    async for value in _site(desk, settings_with(desk)):
        yield value


@pytest.fixture
def quick_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MIN_ANSWER_SECONDS", 0.01)
