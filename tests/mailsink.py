"""A real SMTP server for tests that records what arrives (the relay), and
the Redis the worker tests use."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.daemon_helpers import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Sink:
    """Records every mail; `refuse_with` makes it answer RCPT with a code."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content,
                                           policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> Sink:
        self.port = self.port or free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received if address in r.rcpt_tos]

    def wait(self, count: int, address: str | None = None, timeout: float = 15) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(address) if address else [r.message for r in self.received]
            if len(got) >= count:
                return got
            time.sleep(0.02)
        with self.lock:
            seen = [(r.rcpt_tos, r.message["Subject"]) for r in self.received]
        raise AssertionError(f"expected {count} mails{' to ' + address if address else ''}, "
                             f"got {seen}")


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


def _private_redis(tmp: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true but neither MAILDESK_TEST_REDIS_URL nor redis-server is there")
        pytest.skip("no Redis: set MAILDESK_TEST_REDIS_URL or install redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return f"redis://127.0.0.1:{port}/0", process


def _per_worker(url: str) -> str:
    """Under pytest-xdist each worker flushes a Redis database of its own:
    the given one for gw0, the next ones (mod 16) for the others."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    base, _, number = url.rpartition("/")
    index = int(number) if number.isdigit() else 0
    return f"{base}/{(index + int(worker[2:])) % 16}"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """MAILDESK_TEST_REDIS_URL (flushed first), else a private redis-server."""
    import redis

    url = _per_worker(os.environ.get("MAILDESK_TEST_REDIS_URL", ""))
    process = None
    if not url:
        url, process = _private_redis(tmp_path)
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.flushdb()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield url
    finally:
        client.close()
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
