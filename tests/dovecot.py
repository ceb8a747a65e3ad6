"""A real Dovecot for the IMAP tests, plus a TCP proxy that misbehaves on cue.

`start_dovecot()` runs `dovecot -F` with its own config, base_dir, log file
and Maildir under a fresh temp dir: a plain listener (which also offers
STARTTLS) and an implicit-TLS listener on free ports of 127.0.0.1, with a
throwaway self-signed certificate for 127.0.0.1. Users live in a passwd-file
that Dovecot re-reads when it changes, so each test adds its own user (and
so gets its own empty mailbox) on one shared server.

As root, Dovecot refuses to run login or mail processes as root: they run as
the system users `dovenull` and `dovecot` that Debian's package creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import itertools
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maildesk.config import ImapAccountSettings

#: Users in the passwd-file, written before Dovecot starts: it re-reads the
#: file at most once a second, so users added later may not exist yet.
USERS = 200


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_uid = {mail_user}
mail_gid = {mail_group}
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
auth_failure_delay = 0
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_location = maildir:{root}/mail/%u
mailbox_idle_check_interval = 1 secs
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = {root}/passwd{passwd_mechanisms}
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
    ssl = no
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
# No auth penalty (delays of 2 to 15 s after failed logins from one IP): the
# tests log in wrongly on purpose, and everything comes from 127.0.0.1.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

#: With `oauth2_introspection_url`: XOAUTH2 and OAUTHBEARER, checked by
#: Dovecot's oauth2 passdb against that (the test's) introspection endpoint;
#: the passwd-file passdb keeps PLAIN and LOGIN.
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
"""
OAUTH2_ARGS = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
tokeninfo_url =
"""


@dataclass(frozen=True)
class ImapUser:
    name: str
    password: str


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int
    process: subprocess.Popen[bytes]
    mail_uid: int
    _next_user: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate (trust it via SSL_CERT_FILE)."""
        return self.root / "cert.pem"

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_user(self) -> ImapUser:
        """A user of its own (so an empty mailbox of its own) for one test."""
        number = next(self._next_user)
        if number > USERS:
            raise RuntimeError(f"all {USERS} test users are taken; raise USERS")
        return ImapUser(f"desk{number}", f"Geheim-{number}")

    def account(self, user: ImapUser, **overrides: object) -> ImapAccountSettings:
        values: dict[str, object] = {
            "name": f"test-{user.name}", "host": "127.0.0.1", "port": self.port,
            "security": "none", "user": user.name, "password": user.password,
            "poll_seconds": 1,
        }
        values.update(overrides)
        return ImapAccountSettings(**values)

    @contextlib.contextmanager
    def client(self, user: ImapUser) -> Iterator[imaplib.IMAP4]:
        """A second, independent IMAP client (the stdlib's), logged in."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(user.name, user.password)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(self, user: ImapUser, *mails: bytes, folder: str = "INBOX") -> None:
        with self.client(user) as imap:
            if folder != "INBOX":
                imap.create(folder)
            for raw in mails:
                status, data = imap.append(folder, "", None, raw)
                assert status == "OK", data

    def flags(self, user: ImapUser, folder: str = "INBOX") -> dict[int, set[str]]:
        """uid -> flags of every message in the folder."""
        with self.client(user) as imap:
            status, _ = imap.select(folder, readonly=True)
            assert status == "OK", folder
            status, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
        found: dict[int, set[str]] = {}
        for item in data:
            if not isinstance(item, bytes) or b"UID" not in item:
                continue
            text = item.decode()
            uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
            found[uid] = set(text.split("FLAGS (", 1)[1].split(")", 1)[0].split())
        return found

    def maildir(self, user: ImapUser, folder: str = "INBOX") -> Path:
        base = self.root / "mail" / user.name
        return base if folder == "INBOX" else base / f".{folder}"

    def files(self, user: ImapUser, folder: str = "INBOX") -> list[Path]:
        """The message files of a folder (new/ and cur/)."""
        box = self.maildir(user, folder)
        return [f for sub in ("new", "cur") if (box / sub).is_dir() for f in (box / sub).iterdir()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def _ids() -> dict[str, str]:
    """The users Dovecot's processes run as (root may not be any of them)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return dict.fromkeys(("internal_user", "internal_group", "login_user", "mail_user",
                              "mail_group"), me)

    def existing(*names: str) -> str:
        for name in names:
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name).pw_name
        raise RuntimeError(f"none of the users {names} exists (install dovecot-core)")

    mail = existing("dovecot", "nobody")
    return {"internal_user": "root", "internal_group": "root",
            "login_user": existing("dovenull", "nobody"),
            "mail_user": mail, "mail_group": mail}


def start_dovecot(binary: str, timeout: float = 15,
                  oauth2_introspection_url: str | None = None) -> Dovecot:
    # Not under pytest's tmp_path: unix socket paths must stay short, and
    # the unprivileged mail user must be able to reach its Maildir.
    root = Path(tempfile.mkdtemp(prefix="md-dovecot-"))
    root.chmod(0o755)
    ids = _ids()
    mail_uid = pwd.getpwnam(ids["mail_user"]).pw_uid
    mail_gid = pwd.getpwnam(ids["mail_user"]).pw_gid
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, mail_uid, mail_gid)
    (root / "passwd").write_text("".join(
        f"desk{n}:{{PLAIN}}Geheim-{n}::::{root}/home/desk{n}::\n" for n in range(1, USERS + 1)))
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    port, tls_port = free_port(), free_port()
    oauth2 = {"oauth2_mechanisms": "", "oauth2_passdb": "", "passwd_mechanisms": ""}
    if oauth2_introspection_url:
        (root / "dovecot-oauth2.conf.ext").write_text(OAUTH2_ARGS.format(
            url=oauth2_introspection_url))
        oauth2 = {"oauth2_mechanisms": " xoauth2 oauthbearer",
                  "oauth2_passdb": OAUTH2_PASSDB.format(root=root),
                  "passwd_mechanisms": "\n  mechanisms = plain login"}
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port, tls_port=tls_port,
                                                     **ids, **oauth2))
    with (root / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")],
                                   stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    server = Dovecot(root, port, tls_port, process, mail_uid)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            stderr = (root / "stderr.log").read_text(errors="replace")
            log = server.log
            server.stop()
            raise RuntimeError(f"dovecot exited with {process.returncode}: {stderr}\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            log = server.log
            server.stop()
            raise RuntimeError(f"dovecot did not answer on port {port}: {log}")
        time.sleep(0.05)


@contextlib.contextmanager
def dovecot_for_tests(oauth2_introspection_url: str | None = None) -> Iterator[Dovecot]:
    """A running Dovecot for a test module; in CI a missing one fails.
    With `oauth2_introspection_url` it also takes XOAUTH2/OAUTHBEARER tokens
    that this URL (RFC 7662 style, POST token=...) says are active."""
    from tests.conftest import IN_CI

    binary = dovecot_binary()
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true but dovecot is not installed (.ci/run installs dovecot-imapd)")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    server = start_dovecot(binary, oauth2_introspection_url=oauth2_introspection_url)
    try:
        yield server
    finally:
        server.stop()


def trusting_context(server: Dovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert))


@dataclass
class Proxy:
    """A TCP proxy in front of Dovecot, for faults a real server won't make.

    The first `cuts` connections that reach the fault are cut (both sides
    closed): `cut_fetch_after` bytes into the server's answer to the
    connection's `cut_fetch_number`-th body fetch (BODY.PEEK[]), or, with
    `cut_command`, when the client sends that command (it never reaches the
    server). `strip`: capability words removed from what the server says
    (e.g. b" MOVE" to make the poller use its COPY fallback).
    """

    target_port: int
    cut_fetch_after: int | None = None
    cut_fetch_number: int = 1
    cut_command: bytes | None = None
    cuts: int = 1
    strip: tuple[bytes, ...] = ()
    connections: int = 0
    cut_done: int = 0
    port: int = 0
    sent: bytearray = field(default_factory=bytearray)  # everything the clients sent
    connected_at: list[float] = field(default_factory=list)  # time.time() of each connection
    _server: asyncio.AbstractServer | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _may_cut(self) -> bool:
        return self.cut_done < self.cuts

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected_at.append(time.time())
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        self._writers += [client_w, server_w]
        armed = asyncio.Event()
        body_fetches = 0

        async def upstream() -> None:
            nonlocal body_fetches
            while data := await client_r.read(65536):
                if self.cut_command and self.cut_command in data.upper() and self._may_cut():
                    self.cut_done += 1
                    return
                if b"BODY.PEEK[]" in data.upper():
                    body_fetches += 1
                    if body_fetches == self.cut_fetch_number:
                        armed.set()
                self.sent += data
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            sent = 0
            while data := await server_r.read(65536):
                for word in self.strip:
                    data = data.replace(word, b"")
                if armed.is_set() and self.cut_fetch_after is not None and self._may_cut():
                    room = self.cut_fetch_after - sent
                    if len(data) >= room:
                        client_w.write(data[:room])
                        await client_w.drain()
                        self.cut_done += 1
                        return
                    sent += len(data)
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()
