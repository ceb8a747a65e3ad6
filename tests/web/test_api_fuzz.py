"""The whole API, tried from its own OpenAPI document with schemathesis:
generated valid and invalid inputs on every operation, with an admin token,
against a real server. No input may cause a 500, and every answer must be
one the document promises (status, content type, body schema)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from maildesk import db
from maildesk.cli.app import main
from maildesk.config import load_settings
from maildesk.web import server as web_server
from maildesk.web.api import PREFIX, ROUTES
from maildesk.web.api.auth import API
from maildesk.web.api.openapi import build
from maildesk.web.metrics import DaemonMetrics
from tests.conftest import REPO
from tests.mailfactory import make_mail

schema = schemathesis.openapi.from_dict(build(ROUTES, PREFIX))
# A body over the server's size limit is refused as such (413) before it is
# read: a rejection, as much as a 422 is.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]
#: Examples per operation: enough to reach every parameter, bounded for the suite.
EXAMPLES = 15


@dataclass
class Live:
    base: str
    token: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root: Path = tmp_path_factory.mktemp("api-fuzz")
    env = {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"), "MAILDESK_DATA_DIR": str(root),
           "MAILDESK_DATABASE__URL": f"sqlite:///{root / 'maildesk.sqlite3'}"}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    for n in range(3):
        result = runner.invoke(main, ["ingest"], env=env,
                               input=make_mail(subject=f"Fuzz {n}", message_id=f"<fz{n}@k.de>"))
        assert result.exit_code == 0, result.output
    created = runner.invoke(main, ["tokens", "create", "--agent", "agent@example.com",
                                   "--scope", "admin"], env=env)
    token = created.stdout.strip().splitlines()[0]
    settings_ = load_settings(REPO / "maildesk.toml", env)
    settings_ = settings_.model_copy(update={"web": settings_.web.model_copy(
        update={"port": 0})})
    engine = db.make_engine(settings_.database_url)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def serve() -> None:
        app_runner = await web_server.start_web(settings_, engine, DaemonMetrics(lambda: []),
                                                lambda ids: None)
        holder["runner"] = app_runner
        # schemathesis also tries every route without a token, from one address
        app_runner.app[API].limiter.allowed = 10**9
        holder["port"] = app_runner.addresses[0][1]
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
    started.wait(10)
    try:
        yield Live(f"http://127.0.0.1:{holder['port']}", token)
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        engine.dispose()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_input_breaks_the_api_or_its_promises(case: schemathesis.Case,
                                                           live: Live) -> None:
    # positive_data_acceptance is left out: it also judges cases whose body
    # was made invalid on purpose (a body of `0`) as valid ones, and expects
    # them taken. Every other check runs, negative_data_rejection included.
    case.call_and_validate(base_url=live.base,
                           headers={"Authorization": f"Bearer {live.token}"},
                           excluded_checks=[positive_data_acceptance])
