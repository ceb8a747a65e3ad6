"""The HTTP server of `maildesk serve`: /healthz, /metrics, security headers.

The first tests run the real daemon (`maildesk serve`) and talk to it over
real sockets (urllib, smtplib); the others start the web application alone
on a free port with a broken database, a dead or hung Redis, a stopped
listener, to see the failures reported (503, scrape errors), never raised.
"""

from __future__ import annotations

import asyncio
import json
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from maildesk import db
from maildesk.accept.imap import AccountStatus
from maildesk.accept.smtp import ListenerStats
from maildesk.config import Settings
from maildesk.web import health as web_health
from maildesk.web import server as web_server
from maildesk.web.metrics import DaemonMetrics, query_database
from tests.conftest import BACKENDS, REPO, Desk
from tests.daemon_helpers import (
    ServeProcess,
    free_port,
    module_desk,
    port_open,
    start_serve,
    wait_until,
)
from tests.mailfactory import make_mail

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(port: int, path: str, method: str = "GET") -> Reply:
    """One request; HTTP errors are replies too. Bounded by a 10 s timeout."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers), error.read())


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed: (sample name, sorted labels) -> value."""
    reply = http(port, "/metrics")
    assert reply.status == 200, reply
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.body.decode())
            for s in family.samples}


def value(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get((name, tuple(sorted(labels.items()))))


def assert_security_headers(reply: Reply) -> None:
    for name, expected in HEADERS.items():
        assert reply.headers.get(name) == expected, (name, reply.headers)
    assert "aiohttp" not in reply.headers.get("Server", "").lower()


# -- the real daemon -----------------------------------------------------------------------------


#: The served daemon's message size limit (SIZE, 552).
SIZE_LIMIT = 200_000


@dataclass
class Served:
    process: ServeProcess
    web_port: int
    desk: Desk


@pytest.fixture(scope="module", params=BACKENDS)
def daemon(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One daemon per backend for the tests below: they read /healthz and
    /metrics and compare counts before and after their own mail, so they
    need the daemon up, not a fresh one (a start costs 3-5 s)."""
    root = tmp_path_factory.mktemp(f"web-{request.param}")
    with module_desk(request.param, root) as desk:
        web_port = free_port()
        process = start_serve(desk.env, root, MAILDESK_WEB__PORT=str(web_port),
                              MAILDESK_LIMITS__MAX_MESSAGE_BYTES=str(SIZE_LIMIT))
        try:
            wait_until(lambda: port_open(web_port) or process.process.poll() is not None, 20)
            assert process.process.poll() is None, process.output()
            yield Served(process, web_port, desk)
        finally:
            code = process.stop()
        assert code == 0, process.output()
        assert not port_open(web_port), "the web server still listens after the daemon stopped"


@pytest.fixture
def served(daemon: Served) -> Iterator[Served]:
    """The shared daemon, checked after each test: still running and every
    accepted mail processed, so the next test starts from a quiet daemon."""
    assert daemon.process.process.poll() is None, daemon.process.output()
    yield daemon
    assert daemon.process.process.poll() is None, daemon.process.output()

    def quiet() -> bool:
        return value(samples(daemon.web_port), "maildesk_inbound_mails",
                     state="pending", outcome="none") == 0

    wait_until(quiet)


def test_healthz_reports_database_broker_and_listeners_ok(served: Served) -> None:
    reply = http(served.web_port, "/healthz")
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"].startswith("application/json")
    report = reply.json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"database", "broker", "listeners"}
    for name, check in report["checks"].items():
        assert check["ok"] is True, (name, check)
        assert isinstance(check["detail"], str)
    assert report["checks"]["broker"]["detail"] == "embedded"
    listeners = report["checks"]["listeners"]["detail"]
    assert listeners == f"smtp 127.0.0.1:{served.process.port} serving"
    assert "web server on http://127.0.0.1:" in served.process.output()


def test_metrics_move_when_a_mail_comes_in_over_smtp(served: Served) -> None:
    """Counts are compared with those before this test's mails (the daemon is
    shared): one accepted, one refused per reason, one ticket, one ingest."""
    reply = http(served.web_port, "/metrics")
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
    before = samples(served.web_port)
    tickets_before = len(served.desk.list())

    def count(metrics: dict, name: str, **labels: str) -> float:
        found = value(metrics, name, **labels)
        assert found is not None, (name, labels)  # shown from the start, 0 until counted
        return found

    assert count(before, "maildesk_inbound_mails", state="pending", outcome="none") == 0
    assert count(before, "maildesk_scrape_errors_total") == 0

    with smtplib.SMTP("127.0.0.1", served.process.port, timeout=10) as client:
        client.sendmail("erika@kunde.de", ["support@example.com"], make_mail(subject="Metrik"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("erika@kunde.de", ["someone@elsewhere.org"], make_mail())
        limit = SIZE_LIMIT
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # SIZE= says it: 552 at once
            client.sendmail("erika@kunde.de", ["support@example.com"],
                            make_mail(body="x" * (limit + 10)))
        assert refused.value.smtp_code == 552

    def moved(name: str, **labels: str) -> float:
        return count(after, name, **labels) - (value(before, name, **labels) or 0)

    def ticket_counted() -> dict | None:
        now = samples(served.web_port)
        new = count(now, "maildesk_tickets", status="new")
        return now if new == count(before, "maildesk_tickets", status="new") + 1 else None

    after = wait_until(ticket_counted, 20, 0.1)
    assert isinstance(after, dict)
    assert moved("maildesk_mails_accepted_total", source="smtp") == 1
    assert moved("maildesk_smtp_sessions_total", listener="smtp") >= 1
    assert moved("maildesk_mails_refused_total", reason="rcpt") == 1
    assert moved("maildesk_mails_refused_total", reason="size") == 1
    assert moved("maildesk_ingest_seconds_count") == 1
    assert 0 < moved("maildesk_ingest_seconds_sum") < 20
    assert moved("maildesk_inbound_mails", state="done", outcome="created") == 1
    assert value(after, "maildesk_outbox", state="sent") is not None  # known states shown
    assert count(after, "maildesk_scrape_errors_total") == 0
    assert len(served.desk.list()) == tickets_before + 1


def test_security_headers_on_every_response_and_404_is_plain(served: Served) -> None:
    for path, status in (("/healthz", 200), ("/metrics", 200), ("/no/such/page", 404),
                         ("/healthz/../etc/passwd", 404)):
        reply = http(served.web_port, path)
        assert reply.status == status, (path, reply)
        assert_security_headers(reply)
    missing = http(served.web_port, "/no/such/page")
    assert missing.headers["Content-Type"].startswith("text/plain")
    assert b"Traceback" not in missing.body and len(missing.body) < 100
    post = http(served.web_port, "/healthz", method="POST")
    assert post.status == 405
    assert_security_headers(post)


def test_healthz_turns_503_while_the_daemon_drains(desk: Desk, tmp_path: Path) -> None:
    """SIGTERM with a session still open: the listener is closed but the web
    server still answers, so a load balancer sees the instance going away."""
    web_port = free_port()
    process = start_serve(desk.env, tmp_path, MAILDESK_WEB__PORT=str(web_port),
                          MAILDESK_LIMITS__MAX_MESSAGE_BYTES=str(SIZE_LIMIT))
    try:
        wait_until(lambda: port_open(web_port), 20)
        with smtplib.SMTP("127.0.0.1", process.port, timeout=10) as client:
            client.ehlo()
            assert http(web_port, "/healthz").status == 200
            process.process.send_signal(signal.SIGTERM)

            def draining() -> Reply | None:
                reply = http(web_port, "/healthz")
                return reply if reply.status == 503 else None

            reply = wait_until(draining, 10)
            assert isinstance(reply, Reply)
            listeners = reply.json()["checks"]["listeners"]
            assert listeners == {"ok": False,
                                 "detail": f"smtp 127.0.0.1:{process.port} NOT serving"}
    finally:
        code = process.stop()
    assert code == 0, process.output()


def test_web_disabled_serves_no_http(desk: Desk, tmp_path: Path) -> None:
    web_port = free_port()
    process = start_serve(desk.env, tmp_path, MAILDESK_WEB__ENABLED="false",
                          MAILDESK_WEB__PORT=str(web_port))
    try:
        with smtplib.SMTP("127.0.0.1", process.port, timeout=10) as client:
            assert client.noop()[0] == 250
        assert not port_open(web_port)
    finally:
        assert process.stop() == 0, process.output()
    assert "web server on" not in process.output()


def test_web_port_in_use_fails_the_start_like_the_smtp_port(desk: Desk) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web_port = taken.getsockname()[1]
        env = {**desk.env, "MAILDESK_SMTP__PORT": str(free_port()),
               "MAILDESK_WEB__PORT": str(web_port)}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "maildesk", "serve"], env=env, cwd=REPO,
                                capture_output=True, timeout=60)
    assert result.returncode == 71, result
    assert time.monotonic() - started < 30
    message = result.stderr.decode()
    assert f"web server on 127.0.0.1:{web_port}" in message and "[web]" in message, message


# -- the application alone: failures ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def broken_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that cannot be reached: a SQLite file in a directory that
    does not exist, a PostgreSQL port nobody listens on. (Plain
    create_engine: maildesk's make_engine would create the directory.)"""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}"
    return f"postgresql+psycopg://maildesk@127.0.0.1:{free_port()}/maildesk?connect_timeout=1"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A working engine on each backend (SELECT 1 needs no schema)."""
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


class HangingEngine:
    """A database that does not answer until released, then does."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.release = threading.Event()
        self.calls = 0

    def connect(self) -> Any:
        self.calls += 1
        self.release.wait(30)
        return self.engine.connect()


@dataclass
class FakeListener:
    name: str
    where: str
    server: asyncio.AbstractServer
    stats: ListenerStats = field(default_factory=ListenerStats)


def fake_daemon(engine: Any, broker_url: str = "", listeners: list | None = None,
                pollers: list | None = None) -> Any:
    settings = Settings.model_validate({"web": {"port": free_port()}, "broker": {"url": broker_url},
                                        "security": {"secret": "test-secret"}})
    daemon = SimpleNamespace(settings=settings, engine=engine, listeners=listeners or [],
                             pollers=pollers or [], dispatch=lambda ids: None)
    daemon.metrics = DaemonMetrics(lambda: [(lst.name, lst.stats) for lst in daemon.listeners],
                                   lambda: [p.status() for p in daemon.pollers])
    return daemon


@dataclass
class FakePoller:
    """An IMAP poller as /healthz and /metrics see it (accept/imap.ImapPoller)."""

    current: AccountStatus

    def status(self) -> AccountStatus:
        return self.current


def account_status(name: str, state: str, healthy: bool, **more: Any) -> AccountStatus:
    values: dict[str, Any] = {
        "connected": state == "polling", "lease_held": state != "standby", "polls": 0,
        "last_poll": None, "last_error": None, "last_error_at": None, "errors": 0}
    values.update(more)
    return AccountStatus(name=name, state=state, healthy=healthy, **values)


async def test_a_dead_imap_account_makes_healthz_degraded_and_shows_in_metrics(
        engine: Engine) -> None:
    polled = datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    good = FakePoller(account_status("support", "polling", True, polls=7, last_poll=polled))
    standby = FakePoller(account_status("billing", "standby", True))
    dead = FakePoller(account_status("sales", "failing", False, errors=3,
                                     last_error="login refused: [AUTHENTICATIONFAILED] no",
                                     last_error_at=polled))
    runner, port = await serve_app(fake_daemon(engine, pollers=[good, standby, dead]))
    try:
        reply = await asyncio.to_thread(http, port, "/healthz")
        metrics = await asyncio.to_thread(samples, port)
        dead.current = account_status("sales", "polling", True, polls=1, last_poll=polled)
        healed = (await asyncio.to_thread(http, port, "/healthz")).json()
    finally:
        await runner.cleanup()
    assert reply.status == 200  # SMTP and the database work: keep the instance in service
    report = reply.json()
    assert report["status"] == "degraded"
    assert report["checks"]["database"]["ok"] is True
    assert report["checks"]["imap"]["ok"] is False
    assert "sales failing" in report["checks"]["imap"]["detail"]
    accounts = {a["account"]: a for a in report["imap"]}
    assert accounts["support"] == {
        "account": "support", "state": "polling", "connected": True, "lease": "held",
        "healthy": True, "polls": 7, "last_poll": "2026-12-06T08:30:00Z", "last_error": None,
        "last_error_at": None}
    assert accounts["billing"]["lease"] == "standby" and accounts["billing"]["healthy"]
    assert accounts["sales"]["last_error"].startswith("login refused")
    assert value(metrics, "maildesk_imap_up", account="sales") == 0
    assert value(metrics, "maildesk_imap_up", account="support") == 1
    assert value(metrics, "maildesk_imap_connected", account="support") == 1
    assert value(metrics, "maildesk_imap_lease_held", account="billing") == 0
    assert value(metrics, "maildesk_imap_errors_total", account="sales") == 3
    assert value(metrics, "maildesk_imap_polls_total", account="support") == 7
    assert value(metrics, "maildesk_imap_last_poll_timestamp_seconds",
                 account="support") == polled.timestamp()
    assert value(metrics, "maildesk_imap_last_poll_timestamp_seconds", account="sales") is None
    assert healed["status"] == "ok" and healed["checks"]["imap"]["ok"] is True


async def serve_app(daemon: Any) -> tuple[web.AppRunner, int]:
    runner = await web_server.start_web(daemon.settings, daemon.engine, daemon.metrics,
                                        daemon.dispatch, lambda: daemon.listeners,
                                        lambda: daemon.pollers)
    return runner, runner.addresses[0][1]


async def test_healthz_503_names_the_unreachable_database(broken_url: str) -> None:
    serving = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    listener = FakeListener("smtp", "127.0.0.1:1", serving)
    runner, port = await serve_app(fake_daemon(create_engine(broken_url), listeners=[listener]))
    try:
        reply = await asyncio.to_thread(http, port, "/healthz")
    finally:
        await runner.cleanup()
        serving.close()
    assert reply.status == 503, reply
    assert_security_headers(reply)
    report = reply.json()
    assert report["status"] == "fail"
    assert report["checks"]["database"]["ok"] is False
    assert "OperationalError" in report["checks"]["database"]["detail"]
    for secret in ("missing-dir", "127.0.0.1"):  # no error text (paths, hosts) leaks out
        assert secret not in reply.body.decode().replace("127.0.0.1:1 serving", "")
    assert report["checks"]["broker"] == {"ok": True, "detail": "embedded"}
    assert report["checks"]["listeners"] == {"ok": True, "detail": "smtp 127.0.0.1:1 serving"}


async def test_healthz_503_when_a_listener_stopped_serving(engine: Engine) -> None:
    stopped = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    stopped.close()
    await stopped.wait_closed()
    runner, port = await serve_app(fake_daemon(engine,
                                               listeners=[FakeListener("lmtp", "x", stopped)]))
    try:
        reply = await asyncio.to_thread(http, port, "/healthz")
    finally:
        await runner.cleanup()
    assert reply.status == 503
    checks = reply.json()["checks"]
    assert checks["database"] == {"ok": True, "detail": "SELECT 1 answered"}
    assert checks["listeners"] == {"ok": False, "detail": "lmtp x NOT serving"}


async def test_hung_database_fails_in_time_with_one_thread_and_recovers(engine: Engine) -> None:
    hanging = HangingEngine(engine)
    health = web_health.Health(hanging, "", lambda: [], web_health.OffLoop(),  # type: ignore[arg-type]
                               timeout=0.3)
    started = time.monotonic()
    try:
        reports = await asyncio.gather(*(health.run() for _ in range(5)))
        again = await health.run()  # the first probe still hangs: joined, not repeated
    finally:
        hanging.release.set()
    assert time.monotonic() - started < 2
    for report in [*reports, again]:
        assert report["status"] == "fail"
        assert report["checks"]["database"] == {"ok": False, "detail": "no answer within 0.3 s"}
    assert hanging.calls == 1

    async def recovered() -> dict:
        while (report := await health.run())["status"] != "ok":
            await asyncio.sleep(0.05)
        return report

    report = await asyncio.wait_for(recovered(), 10)
    assert report["checks"]["database"]["ok"] is True


async def test_broker_check_pings_redis(engine: Engine, redis_url: str) -> None:
    alive = web_health.Health(engine, redis_url, lambda: [], web_health.OffLoop(), timeout=2)
    dead = web_health.Health(engine, f"redis://127.0.0.1:{free_port()}/0", lambda: [],
                             web_health.OffLoop(), timeout=2)
    try:
        assert await alive.broker() == web_health.Check(True, "Redis PING answered")
        down = await dead.run()
    finally:
        alive.close()
        dead.close()
    assert down["status"] == "fail"
    assert down["checks"]["broker"] == {"ok": False,
                                        "detail": "ConnectionError (details in the log)"}


async def test_broker_that_never_answers_fails_in_time(engine: Engine) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        health = web_health.Health(engine, url, lambda: [], web_health.OffLoop(), timeout=0.5)
        started = time.monotonic()
        report = await health.run()
        health.close()
    assert time.monotonic() - started < 3
    assert report["status"] == "fail"
    assert report["checks"]["broker"]["ok"] is False
    assert report["checks"]["database"]["ok"] is True


async def test_metrics_survive_a_database_error(broken_url: str) -> None:
    runner, port = await serve_app(fake_daemon(create_engine(broken_url)))
    try:
        first = await asyncio.to_thread(samples, port)
        second = await asyncio.to_thread(samples, port)
    finally:
        await runner.cleanup()
    assert value(first, "maildesk_scrape_errors_total") == 1
    assert value(second, "maildesk_scrape_errors_total") == 2
    assert not any(name.startswith("maildesk_tickets") for name, _ in second)
    assert value(second, "maildesk_ingest_seconds_count") == 0  # the rest is still there


async def test_an_error_in_a_handler_is_a_short_500_with_headers(engine: Engine) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals /etc/maildesk")

    def register(app: web.Application) -> None:
        app.router.add_get("/boom", boom)

    web_server.ROUTES.append(register)
    try:
        runner, port = await serve_app(fake_daemon(engine))
    finally:
        web_server.ROUTES.remove(register)
    try:
        reply = await asyncio.to_thread(http, port, "/boom")
        health = await asyncio.to_thread(http, port, "/healthz")
    finally:
        await runner.cleanup()
    assert reply.status == 500
    assert reply.body == b"500 Internal Server Error\n"
    assert_security_headers(reply)
    assert health.status == 200  # the server goes on


def test_database_gauges_on_a_private_registry_per_daemon(desk: Desk) -> None:
    engine = desk.engine()
    try:
        snapshot = query_database(engine)
    finally:
        engine.dispose()
    one = DaemonMetrics(lambda: [])
    two = DaemonMetrics(lambda: [])
    one.ingest_seconds.observe(0.2)
    text = one.render(snapshot).decode()
    assert "maildesk_ingest_seconds_count 1.0" in text
    assert 'maildesk_tickets{status="closed"} 0.0' in text
    assert 'maildesk_outbox{state="queued"} 0.0' in text
    assert 'maildesk_inbound_mails{outcome="none",state="pending"} 0.0' in text
    assert "maildesk_ingest_seconds_count 0.0" in two.render(snapshot).decode()
    assert "maildesk_scrape_errors_total 0.0" in text
