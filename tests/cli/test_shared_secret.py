"""Several instances on one PostgreSQL must share security.secret: serve,
worker and ingest refuse a secret generated into the local data dir there
(a reply to one instance's mail would not verify at another), and
`maildesk check` says so. SQLite (one host) keeps the generated one."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from maildesk.cli.app import main
from maildesk.config import load_settings
from maildesk.secret import shared_secret_problem
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail

CONFIG = REPO / "maildesk.toml"


def _settings(**env: str):
    return load_settings(CONFIG, {"MAILDESK_DATA_DIR": "/var/lib/maildesk", **env})


def test_the_decision() -> None:
    pg = {"MAILDESK_DATABASE__URL": "postgresql://maildesk@db/maildesk"}
    problem = shared_secret_problem(_settings(**pg), str(CONFIG))
    assert problem is not None
    assert "security.secret" in problem and str(CONFIG) in problem
    assert "/var/lib/maildesk/secret" in problem and "allow_local_secret" in problem
    assert shared_secret_problem(_settings(**pg, MAILDESK_SECURITY__SECRET="s3"), "x") is None
    assert shared_secret_problem(
        _settings(**pg, MAILDESK_SECURITY__ALLOW_LOCAL_SECRET="true"), "x") is None
    assert shared_secret_problem(_settings(), "x") is None, "SQLite: one host, one data dir"


def _pg_desk_without_secret(tmp_path: Path, url: str) -> Desk:
    env = {"MAILDESK_CONFIG": str(CONFIG), "MAILDESK_DATA_DIR": str(tmp_path / "var"),
           "MAILDESK_DATABASE__URL": url}
    return Desk(tmp_path, env, load_settings(CONFIG, env))


def _run(desk: Desk, *args: str, input: bytes | None = None):
    return CliRunner().invoke(main, list(args), env=desk.env, input=input,
                              catch_exceptions=False)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_serve_worker_and_ingest_refuse_a_local_secret_on_postgresql(
        tmp_path: Path, database_url: str) -> None:
    desk = _pg_desk_without_secret(tmp_path, database_url)
    assert _run(desk, "db", "upgrade").exit_code == 0
    serve = _run(desk, "serve")
    assert serve.exit_code == 78
    assert "security.secret is not set" in serve.stderr and str(CONFIG) in serve.stderr
    desk.env["MAILDESK_BROKER__URL"] = "redis://127.0.0.1:1/0"
    worker = _run(desk, "worker")
    assert worker.exit_code == 78 and "security.secret" in worker.stderr
    ingest = _run(desk, "ingest", input=make_mail())
    assert ingest.exit_code == 75, "the MTA keeps the mail and retries"
    assert "mail not taken" in ingest.stderr
    assert not (tmp_path / "var" / "secret").exists(), "nothing generated"
    assert _run(desk, "tickets", "list", "--json").stdout.strip() == "[]"
    check = _run(desk, "check", "--json")
    assert check.exit_code == 1 and '"name": "secret"' in check.stdout

    desk.env["MAILDESK_SECURITY__ALLOW_LOCAL_SECRET"] = "true"
    taken = _run(desk, "ingest", input=make_mail())
    assert taken.exit_code == 0, taken.output
    assert (tmp_path / "var" / "secret").exists()
