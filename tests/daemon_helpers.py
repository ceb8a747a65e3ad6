"""Run `maildesk serve` as a real process on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from maildesk import db
from maildesk.config import load_settings
from tests.conftest import IN_CI, PG_URL, Desk

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 20, step: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def web_port(self) -> int:
        return int(self.env["MAILDESK_WEB__PORT"])

    def sessions_active(self) -> float:
        """SMTP/LMTP sessions the daemon has open now, from its /metrics."""
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            lines = response.read().decode().splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines
                   if line.startswith("maildesk_smtp_sessions_active{"))


def start_serve(env: dict[str, str], tmp: Path, **overrides: str) -> ServeProcess:
    """Start serve with the desk's env plus overrides; wait for its port."""
    port = free_port()
    full = {**os.environ, **env, "MAILDESK_SMTP__PORT": str(port),
            "MAILDESK_SERVE__DRAIN_INTERVAL_SECONDS": "1",
            "MAILDESK_SERVE__GRACE_SECONDS": "5", "MAILDESK_WEB__PORT": str(free_port()),
            **overrides}
    log = tmp / f"serve-{port}.log"
    handle = open(log, "wb")
    process = subprocess.Popen([sys.executable, "-m", "maildesk", "serve"], env=full,
                               stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
    serve = ServeProcess(process, port, log, full)
    deadline = time.monotonic() + 30
    while not port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"serve did not start:\n{serve.output()}")
        time.sleep(0.05)
    return serve


@contextmanager
def module_desk(backend: str, root: Path) -> Iterator[Desk]:
    """A migrated desk for one daemon that several tests of a module share
    (the `desk` fixture is per test): starting `maildesk serve` costs 3-5 s
    (its import and its spawned processor's), the tests of such a module
    only need the daemon up and keep their data apart themselves."""
    env = {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"), "MAILDESK_DATA_DIR": str(root / "var")}
    schema = ""
    if backend == "sqlite":
        env["MAILDESK_DATABASE__URL"] = f"sqlite:///{root / 'maildesk.sqlite3'}"
    else:
        if not PG_URL:
            if IN_CI:
                pytest.fail("CI=true but MAILDESK_TEST_DATABASE_URL is not set")
            pytest.skip("MAILDESK_TEST_DATABASE_URL not set (PostgreSQL tests)")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = db.make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        sep = "&" if "?" in PG_URL else "?"
        env["MAILDESK_DATABASE__URL"] = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        env["MAILDESK_SECURITY__SECRET"] = "test-secret-shared-by-all-instances"
    desk = Desk(root, env, load_settings(REPO / "maildesk.toml", env))
    try:
        result = desk.cli("db", "upgrade")
        assert result.exit_code == 0, result.output
        yield desk
    finally:
        if schema:
            admin = db.make_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
