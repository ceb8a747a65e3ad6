"""Run `maildesk serve` as a real process on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
