"""Shared fixtures: a data dir, a migrated database (SQLite and, when
MAILDESK_TEST_DATABASE_URL is set, PostgreSQL), and a CLI runner.

In CI (CI=true) a missing PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
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


class _Templates:
    """One migrated database per backend and test run, copied into each
    desk: running the twelve migrations took 0.2-0.4 s per test, most of
    the suite's time. The migrations themselves are tested on empty
    databases (test_architecture.py::test_migrations_match_the_models);
    without pg_dump the PostgreSQL desks migrate as before."""

    def __init__(self) -> None:
        self.sqlite: Path | None = None
        self.pg_dump: str | None = None
        self.pg_schema = f"md_tpl_{uuid.uuid4().hex[:10]}"
        self.pg_tried = False

    def _migrate(self, root: Path, url: str) -> None:
        env = {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"),
               "MAILDESK_DATA_DIR": str(root / "var"), "MAILDESK_DATABASE__URL": url,
               "MAILDESK_SECURITY__SECRET": "template-only-secret"}
        result = CliRunner().invoke(main, ["db", "upgrade"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    def fill(self, url: str, tmp_root: Path) -> None:
        """Copy the migrated template into the empty database at `url`."""
        if url.startswith("sqlite:///"):
            if self.sqlite is None:
                root = tmp_root / "sqlite-template"
                root.mkdir(parents=True, exist_ok=True)
                self._migrate(root, f"sqlite:///{root / 'template.sqlite3'}")
                self.sqlite = root / "template.sqlite3"
            source, target = sqlite3.connect(self.sqlite), sqlite3.connect(url[len("sqlite:///"):])
            try:
                source.backup(target)  # WAL-safe, unlike copying the file
            finally:
                target.close()
                source.close()
            return
        schema = url.rsplit("search_path%3D", 1)[1]
        if not self.pg_tried:
            self.pg_tried = True
            self.pg_dump = self._dump(tmp_root)
        if self.pg_dump is None:
            return  # the desk's own `db upgrade` migrates
        admin = db.make_engine(PG_URL)
        try:
            raw = admin.raw_connection()
            try:
                with raw.cursor() as cursor:
                    cursor.execute(self.pg_dump.replace(self.pg_schema, schema))
                raw.commit()
            finally:
                raw.close()
        finally:
            admin.dispose()

    def _dump(self, tmp_root: Path) -> str | None:
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            return None
        admin = db.make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.pg_schema}"))
        try:
            self._migrate(tmp_root, _pg_schema_url(self.pg_schema))
            dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
            done = subprocess.run([pg_dump, "--no-owner", "--no-privileges", "--inserts",
                                   "-n", self.pg_schema, dsn], capture_output=True, text=True)
            if done.returncode != 0:
                return None
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {self.pg_schema} CASCADE"))
            admin.dispose()
        lines = [line for line in done.stdout.splitlines()
                 if not line.startswith(("CREATE SCHEMA", "\\"))
                 and "transaction_timeout" not in line]
        return "\n".join(lines)


_TEMPLATES = _Templates()


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
        result = self.cli("ingest", "--json", *extra, input=raw)
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
def desk(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Desk:
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
    _TEMPLATES.fill(database_url, tmp_path_factory.getbasetemp())
    result = desk.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    return desk


def hand_over(settings: Settings) -> Callable[[list[int]], None]:
    """The dispatch the CLI hands to actions: committed outbox ids onto the
    configured broker (a no-op with the embedded one)."""
    from maildesk.deliver.broker import hand_over as to_broker

    return lambda ids: to_broker(settings, ids)


#: What to install for a skip whose reason names it (the reasons themselves
#: say what is missing; this adds the fix where they do not).
SKIP_HINTS = (("dovecot", "apt-get install dovecot-imapd"),
              ("chromium", "apt-get install chromium"),
              ("postfix", "apt-get install postfix"),
              ("redis", "apt-get install redis-server"),
              ("postgresql binaries", "apt-get install postgresql"),
              ("maildesk_test_database_url", "set it to a PostgreSQL database, see the README"))


def skip_groups(reasons: list[str]) -> list[tuple[int, str]]:
    """(count, reason with its fix) per distinct skip reason, most first."""
    counts: dict[str, int] = {}
    for reason in reasons:
        reason = reason.removeprefix("Skipped: ").strip()
        hint = next((fix for word, fix in SKIP_HINTS if word in reason.lower()), None)
        if hint and hint.split()[-1] not in reason:
            reason = f"{reason} ({hint})"
        counts[reason] = counts.get(reason, 0) + 1
    return sorted(((n, r) for r, n in counts.items()), key=lambda item: (-item[0], item[1]))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name what the skipped tests need: on a fresh machine over a hundred
    skip for want of Dovecot and Chromium, which a bare count hides."""
    reasons = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            reasons.append(str(longrepr[2]))
    groups = skip_groups(reasons)
    if not groups:
        return
    terminalreporter.section("skipped tests, by what they need")
    for count, reason in groups:
        terminalreporter.line(f"skipped {count} test{'s' if count != 1 else ''}: {reason}")
