"""Two `maildesk serve` polling one IMAP account (a real Dovecot) on one
PostgreSQL; the instance holding the account's lease is killed with
SIGKILL, so it never releases the lease.

What must hold (issue #12): only the lease holder polls, and a live holder
keeps its lease through an IDLE wait far longer than the lease; /healthz of
each instance shows the account's state (polling / standby); after the kill the
other instance takes the lease over within lease_seconds plus one retry
and turns the next mail into a ticket, and nothing is taken twice.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from maildesk import db
from maildesk.accept.imap import failover_bound_seconds
from maildesk.config import ImapAccountSettings
from maildesk.models import ImapState, InboundMail, Ticket
from tests.conftest import REPO
from tests.daemon_helpers import ServeProcess, start_serve, wait_until
from tests.dovecot import Dovecot, ImapUser, dovecot_for_tests
from tests.mailfactory import make_mail
from tests.mailsink import Sink
from tests.reliability.services import make_desk

LEASE_SECONDS = 3
ACCOUNT = "support"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with dovecot_for_tests() as server:
        yield server


def config_with_account(path: Path, dovecot: Dovecot, user: ImapUser) -> Path:
    """The default config with one [[imap]] account (tables go at the end)."""
    text = (REPO / "maildesk.toml").read_text(encoding="utf-8")
    assert "\nimap = []\n" in text
    text = text.replace("\nimap = []\n", "\n") + f"""
[[imap]]
name = "{ACCOUNT}"
host = "127.0.0.1"
port = {dovecot.port}
security = "none"
user = "{user.name}"
password = "{user.password}"
poll_seconds = 60
lease_seconds = {LEASE_SECONDS}
"""
    path.write_text(text, encoding="utf-8")
    return path


def healthz(serve: ServeProcess) -> dict:
    url = f"http://127.0.0.1:{serve.env['MAILDESK_WEB__PORT']}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return json.load(error)


def account_state(serve: ServeProcess) -> str | None:
    try:
        report = healthz(serve)
    except OSError:
        return None
    return next((a["state"] for a in report.get("imap", []) if a["account"] == ACCOUNT), None)


def lease_owner(engine: Engine) -> str | None:
    table = ImapState.__table__
    with engine.connect() as conn:
        return conn.execute(select(table.c.lease_owner)
                            .where(table.c.account == ACCOUNT)).scalar_one_or_none()


def count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_standby_takes_over_a_killed_holders_account_within_its_lease(
        database_url: str, dovecot: Dovecot, sink: Sink, tmp_path: Path, reaper: list) -> None:
    user = dovecot.add_user()
    config = config_with_account(tmp_path / "maildesk.toml", dovecot, user)
    desk = make_desk(tmp_path, tmp_path / "var-a", database_url,
                     MAILDESK_RELAY__HOST="127.0.0.1", MAILDESK_RELAY__PORT=str(sink.port))
    env_a = {**desk.env, "MAILDESK_CONFIG": str(config)}
    env_b = {**env_a, "MAILDESK_DATA_DIR": str(tmp_path / "var-b")}
    engine = db.make_engine(database_url)
    try:
        a = start_serve(env_a, tmp_path)
        reaper.append(a.process)
        wait_until(lambda: account_state(a) == "polling", timeout=20)
        owner = lease_owner(engine)
        assert owner is not None and f":{a.process.pid}:" in owner
        b = start_serve(env_b, tmp_path)
        reaper.append(b.process)
        wait_until(lambda: account_state(b) == "standby", timeout=20)
        # A live holder keeps its lease through an IDLE wait longer than the
        # lease (the heartbeat renews it); the standby stays out.
        time.sleep(2 * LEASE_SECONDS)
        assert f":{a.process.pid}:" in (lease_owner(engine) or "")
        report_a, report_b = healthz(a), healthz(b)
        assert report_a["status"] == report_b["status"] == "ok"
        assert report_a["imap"][0]["lease"] == "held" and report_a["imap"][0]["connected"]
        assert report_b["imap"][0]["lease"] == "standby"
        assert not report_b["imap"][0]["connected"]

        dovecot.append(user, make_mail(subject="Vor dem Absturz", sender="kunde@firma.de"))
        wait_until(lambda: count(engine, Ticket) == 1, timeout=20)

        a.process.send_signal(signal.SIGKILL)  # the lease stays in the database
        a.process.wait(timeout=10)
        killed = time.monotonic()
        dovecot.append(user, make_mail(subject="Nach dem Absturz", sender="kundin@firma.de"))
        wait_until(lambda: count(engine, Ticket) == 2, timeout=60)
        took = time.monotonic() - killed
        owner = lease_owner(engine)
        wait_until(lambda: account_state(b) == "polling", timeout=10)
        assert b.process.poll() is None
    finally:
        engine.dispose()
    account = ImapAccountSettings(name=ACCOUNT, host="h", user="u", poll_seconds=60,
                                  lease_seconds=LEASE_SECONDS)
    # the takeover, plus processing the mail and SIGKILL's aftermath
    assert took < failover_bound_seconds(account) + 4, took
    print(f"failover: the next mail was a ticket {took:.1f} s after the kill "
          f"(lease {LEASE_SECONDS} s, bound {failover_bound_seconds(account):.1f} s)")
    assert owner is not None and f":{b.process.pid}:" in owner
    assert count(engine, InboundMail) == 2  # each mail fetched and stored once
    assert "took the lease over" in b.output()
    assert b.stop() == 0
