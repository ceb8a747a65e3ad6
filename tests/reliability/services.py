"""Private services for the fault tests: a Redis and a PostgreSQL cluster
that a test may kill and restart, a small filesystem it may fill, and an
SMTP client that retries like an MTA.

Why private: the fault tests stop and start these services. The machine's
own Redis and PostgreSQL are shared with other tests (and other people),
so they must never be the ones that go down. Every service here listens on
loopback on a free port, and lives in a temporary directory of its own.

A missing capability (no redis-server, no PostgreSQL binaries, no right to
mount) skips the test on a developer's machine and fails it in CI
(CI=true): a fault test that silently does not run proves nothing.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maildesk.config import load_settings
from tests.conftest import REPO, Desk
from tests.daemon_helpers import free_port, port_open, wait_until

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """A capability the test needs is not there: fail in CI, else skip."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def make_desk(root: Path, data_dir: Path, database_url: str, **env: str) -> Desk:
    """A migrated maildesk on the repository's default config, with its
    data dir and database where the fault test needs them."""
    full = {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"), "MAILDESK_DATA_DIR": str(data_dir),
            "MAILDESK_DATABASE__URL": database_url, **env}
    if database_url.startswith("postgresql"):  # serve/worker refuse a generated one there
        full.setdefault("MAILDESK_SECURITY__SECRET", "test-secret-shared-by-all-instances")
    desk = Desk(root, full, load_settings(REPO / "maildesk.toml", full))
    result = desk.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    return desk


# -- Redis ------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the test's own: no persistence, so a restart comes
    back empty, exactly like a Redis that lost its memory."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is not installed")
        self.binary = str(binary)
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: port_open(self.port) or self.process.poll() is not None, timeout=10)
        if self.process.poll() is not None:
            raise AssertionError("redis-server did not start:\n"
                                 + (self.directory / "redis.log").read_text(errors="replace"))

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, with whatever it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def private_redis(directory: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(directory)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


# -- PostgreSQL -------------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, on a free port, with
    its unix socket in that directory: the machine's server is untouched.

    initdb refuses to run as root, so as root the cluster belongs to the
    `postgres` user (else `nobody`) and every pg_ctl runs as that user.
    """

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            missing("no PostgreSQL binaries (initdb, pg_ctl) found")
        self.bindir = bindir
        self.user: str | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                break
            if self.user is None or shutil.which("runuser") is None:
                missing("running as root without a postgres/nobody user and runuser")
        self.base = Path(tempfile.mkdtemp(prefix="maildesk-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, timeout=timeout, cwd=self.base)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n"
                                 f"{result.stdout.decode(errors='replace')}"
                                 f"{result.stderr.decode(errors='replace')}\n{self.log_text()}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        # A clean shutdown (pg_ctl -m fast) writes everything out, so fsync
        # changes nothing the tests look at; off, the cluster is faster.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.base}'\nfsync = off\n"
                       "full_page_writes = off\nshared_buffers = 16MB\nmax_connections = 60\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except (AssertionError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


# -- a small filesystem -----------------------------------------------------


@contextmanager
def small_filesystem(mountpoint: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `mountpoint`, unmounted afterwards whatever
    happened (lazily if something still holds a file open)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        missing("mounting a tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                             str(mountpoint)], capture_output=True)
    if result.returncode != 0:
        missing(f"cannot mount a tmpfs: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem says ENOSPC; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            while True:
                try:
                    handle.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


# -- an SMTP client that behaves like an MTA ------------------------------------


@dataclass
class Mta:
    """Delivers mails to maildesk over SMTP the way a sending MTA does: a 4xx
    (or a dropped connection) means "try again later", a 5xx bounces.

    Records every answer so a test can say what the senders saw.
    """

    port: int
    retry_seconds: float = 0.5
    timeout: float = 15
    #: (message id, code) of every temporary refusal
    tempfails: list[tuple[str, int]] = field(default_factory=list)
    #: message ids that got their 250, in order
    delivered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def try_once(self, sender: str, raw: bytes, message_id: str) -> int:
        """One attempt; returns the SMTP code of the answer to the mail
        (0 when the connection broke). A 5xx raises: maildesk must never
        bounce a mail for a fault of its own."""
        code = 250
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=self.timeout) as smtp:
                smtp.sendmail(sender, ["support@example.com"], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(c for c, _ in exc.recipients.values())
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
        except (OSError, smtplib.SMTPException):
            code = 0
        if code >= 500:
            raise AssertionError(f"{message_id}: maildesk answered {code} (a bounce)")
        with self.lock:
            if code == 250:
                self.delivered.append(message_id)
            else:
                self.tempfails.append((message_id, code))
        return code

    def deliver(self, sender: str, raw: bytes, message_id: str, within: float = 90) -> None:
        """Retry until 250, like a queue runner (quickly: this is a test)."""
        deadline = time.monotonic() + within
        while self.try_once(sender, raw, message_id) != 250:
            if time.monotonic() > deadline:
                raise AssertionError(f"{message_id} not taken within {within} s")
            time.sleep(self.retry_seconds)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`maildesk worker` as ops run it, output to `log`."""
    handle = open(log, "wb")
    process = subprocess.Popen([sys.executable, "-m", "maildesk", "worker"],
                               env={**os.environ, **env}, cwd=REPO, stdout=handle,
                               stderr=subprocess.STDOUT)
    handle.close()
    return process


def reap(process: subprocess.Popen[bytes]) -> None:
    """Stop a daemon that is still running (a test failed half-way): SIGTERM
    first, which also closes serve's processor pool, then SIGKILL for it and
    for the children it leaves behind."""
    if process.poll() is not None:
        return
    children = _children(process.pid)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
