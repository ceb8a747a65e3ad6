"""Shared fixtures: a data dir, a migrated database (SQLite and, when
MAILDESK_TEST_DATABASE_URL is set, PostgreSQL), and a CLI runner.

In CI (CI=true) a missing PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import Engine

from maildesk import db
from maildesk.cli.app import main
from maildesk.config import Settings, load_settings

#: Fixtures shared by several test modules (the SMTP sink, Redis).
pytest_plugins = ["tests.mailsink"]

PG_URL = os.environ.get("MAILDESK_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own MAILDESK_* settings; the
    MAILDESK_TEST_* ones (where the services are) stay."""
    for name in list(os.environ):
        if name.startswith("MAILDESK_") and not name.startswith("MAILDESK_TEST_"):
            monkeypatch.delenv(name)


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'maildesk.sqlite3'}"
        return
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but MAILDESK_TEST_DATABASE_URL is not set")
        pytest.skip("MAILDESK_TEST_DATABASE_URL not set (PostgreSQL tests)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@dataclass
class Desk:
    """A configured, migrated maildesk in a temp dir, driven by its CLI."""

    root: Path
    env: dict[str, str]
    settings: Settings

    def cli(self, *args: str, input: bytes | str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, env=self.env,
                                  catch_exceptions=False)

    def ingest(self, raw: bytes, *extra: str) -> tuple[int, dict]:
        result = self.cli("ingest", *extra, input=raw)
        line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "{}"
        return result.exit_code, json.loads(line)

    def show(self, number: int) -> dict:
        result = self.cli("tickets", "show", str(number), "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def list(self, *args: str) -> list[dict]:
        result = self.cli("tickets", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def engine(self) -> Engine:
        return db.make_engine(self.settings.database_url)


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Desk:
    """maildesk with the repository's default maildesk.toml, a temp data dir
    and the database under test, already upgraded."""
    env = {
        "MAILDESK_CONFIG": str(REPO / "maildesk.toml"),
        "MAILDESK_DATA_DIR": str(tmp_path / "var"),
        "MAILDESK_DATABASE__URL": database_url,
    }
    if database_url.startswith("postgresql"):  # serve/worker refuse a generated one there
        env["MAILDESK_SECURITY__SECRET"] = "test-secret-shared-by-all-instances"
    settings = load_settings(REPO / "maildesk.toml", env)
    desk = Desk(tmp_path, env, settings)
    result = desk.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    return desk


def hand_over(settings: Settings) -> Callable[[list[int]], None]:
    """The dispatch the CLI hands to actions: committed outbox ids onto the
    configured broker (a no-op with the embedded one)."""
    from maildesk.deliver.broker import hand_over as to_broker

    return lambda ids: to_broker(settings, ids)
