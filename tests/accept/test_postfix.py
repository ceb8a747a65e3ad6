"""A real Postfix in front of a running `maildesk serve`: the three ways
config/postfix-lmtp.example and config/postfix-pipe.example give, with
Debian's master.cf as shipped (lmtp chrooted into the queue directory).

- LMTP over TCP, and a deferral while maildesk is down that a flush
  (`postqueue -f`) delivers once it is back;
- LMTP over a unix socket under the queue directory, which the chrooted
  lmtp client (user postfix) reaches only through lmtp.socket_group/mode;
- the pipe transport (`<venv>/bin/maildesk ingest` as the pipe's own user,
  see tests/postfix.pipe_maildesk), whose first output line Postfix logs as
  the delivery status.

PostgreSQL: the pipe runs as another user than serve, so they share no
SQLite file.
"""

from __future__ import annotations

import grp
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from maildesk import db
from maildesk.config import load_settings
from tests.conftest import IN_CI, PG_URL, Desk
from tests.daemon_helpers import ServeProcess, free_port, start_serve
from tests.mailfactory import make_mail
from tests.postfix import PIPE_USER, Postfix, pipe_maildesk, postfix_for_tests

TCP, UNIX, PIPE = "tcp@example.com", "unix@example.com", "pipe@example.com"
SECRET = "test-secret-shared-by-all-instances"
#: Where the unix socket lives, relative to the queue directory (the lmtp
#: client's chroot), as config/postfix-lmtp.example gives it
SOCKET = "maildesk/lmtp"

CONFIG = """\
data_dir = "{root}/var"

[database]
url = "{url}"

[mail]
addresses = ["{tcp}", "{unix}", "{pipe}"]

[security]
secret = "{secret}"
"""


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but MAILDESK_TEST_DATABASE_URL is not set")
        pytest.skip("MAILDESK_TEST_DATABASE_URL not set (the Postfix tests use PostgreSQL)")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="md-pfdesk-"))
    root.chmod(0o755)  # the pipe user reads the config, writes var/
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    config = root / "maildesk.toml"
    config.write_text(CONFIG.format(root=root, url=url, tcp=TCP, unix=UNIX, pipe=PIPE,
                                    secret=SECRET))
    (root / "var").mkdir()
    os.chown(root / "var", *_ids(PIPE_USER))
    env = {"MAILDESK_CONFIG": str(config)}
    desk = Desk(root, env, load_settings(config, env))
    try:
        result = desk.cli("db", "upgrade")
        assert result.exit_code == 0, result.output
        yield desk
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="module")
def lmtp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def postfix(desk: Desk, lmtp_port: int) -> Iterator[Postfix]:
    # as config/postfix-pipe.example: argv=<venv>/bin/maildesk --config … ingest …
    argv = (f"{pipe_maildesk(desk.root)} --config {desk.env['MAILDESK_CONFIG']} "
            "ingest --sender ${sender} --recipient ${recipient}")
    routes = {TCP: f"lmtp:inet:127.0.0.1:{lmtp_port}", UNIX: f"lmtp:unix:{SOCKET}",
              PIPE: "maildesk:"}
    with postfix_for_tests(routes, argv) as server:
        yield server


def _serve(desk: Desk, **overrides: str) -> ServeProcess:
    return start_serve(desk.env, desk.root, MAILDESK_LMTP__ENABLED="true", **overrides)


def _subjects(desk: Desk) -> list[str]:
    return [t["subject"] for t in desk.list()]


def test_lmtp_over_tcp_and_a_deferral_while_maildesk_is_down(
        desk: Desk, postfix: Postfix, lmtp_port: int) -> None:
    serve = _serve(desk, MAILDESK_LMTP__PORT=str(lmtp_port))
    try:
        postfix.send(make_mail(subject="Über TCP", to=TCP), "erika@kunde.de", TCP)
        sent = postfix.wait_status(TCP, "sent")
        assert "relay=127.0.0.1" in sent
        _wait(lambda: "Über TCP" in _subjects(desk))  # 250 = stored; the ticket follows
    finally:
        assert serve.stop() == 0, serve.output()

    # maildesk down: Postfix keeps the mail and says why
    postfix.send(make_mail(subject="Während der Wartung", to=TCP), "erika@kunde.de", TCP)
    deferred = postfix.wait_status(TCP, "deferred")
    assert "Connection refused" in deferred
    assert [r["recipients"][0]["address"] for r in postfix.queue()] == [TCP]
    assert "Während der Wartung" not in _subjects(desk)

    serve = _serve(desk, MAILDESK_LMTP__PORT=str(lmtp_port))
    try:
        postfix.flush()  # no retry is due for an hour (minimal_backoff_time): only the flush
        _wait(lambda: len([s for s in postfix.status_lines(TCP) if " status=sent " in s]) == 2)
        _wait(lambda: "Während der Wartung" in _subjects(desk))
        assert postfix.queue() == []
    finally:
        assert serve.stop() == 0, serve.output()


def test_lmtp_over_a_unix_socket_in_the_chroot(desk: Desk, postfix: Postfix) -> None:
    socket = postfix.queue_dir / SOCKET
    # install -d -o maildesk -g postfix -m 2750 /var/spool/postfix/maildesk
    socket.parent.mkdir()
    os.chown(socket.parent, -1, grp.getgrnam("postfix").gr_gid)
    socket.parent.chmod(0o2750)
    serve = _serve(desk, MAILDESK_LMTP__SOCKET=str(socket),
                   MAILDESK_LMTP__SOCKET_GROUP="postfix", MAILDESK_LMTP__SOCKET_MODE="0660")
    try:
        _wait(socket.exists)
        postfix.send(make_mail(subject="Über den Socket", to=UNIX), "erika@kunde.de", UNIX)
        sent = postfix.wait_status(UNIX, "sent")
        assert SOCKET in sent
        _wait(lambda: "Über den Socket" in _subjects(desk))
    finally:
        assert serve.stop() == 0, serve.output()


def test_the_pipe_transport_logs_maildesks_status_line(desk: Desk, postfix: Postfix) -> None:
    serve = _serve(desk)  # a running maildesk beside it, as in production
    try:
        postfix.send(make_mail(subject="Über die Pipe", to=PIPE), "erika@kunde.de", PIPE)
        sent = postfix.wait_status(PIPE, "sent")
        number = next(t["number"] for t in desk.list() if t["subject"] == "Über die Pipe")
        assert f"(delivered via maildesk service (maildesk: created #{number}))" in sent, sent
    finally:
        assert serve.stop() == 0, serve.output()


def _wait(predicate: object, timeout: float = 20) -> None:
    from tests.daemon_helpers import wait_until

    wait_until(predicate, timeout=timeout)  # type: ignore[arg-type]


def test_a_socket_group_that_does_not_exist_names_the_key(tmp_path: Path) -> None:
    import socket as sockets

    from maildesk.accept.smtp import share_socket
    from maildesk.config import ConfigError

    path = tmp_path / "lmtp.sock"
    with sockets.socket(sockets.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ConfigError, match=r"lmtp\.socket_group: no group 'postfixx'"):
            share_socket(str(path), "0660", "postfixx")
        share_socket(str(path), "0600", "")
        assert path.stat().st_mode & 0o777 == 0o600


def test_the_lmtp_socket_replaces_a_stale_one_and_gets_its_mode(tmp_path: Path) -> None:
    """What serve does at start (accept/smtp.listen_unix): the socket file
    a killed serve left behind is replaced, and the new socket has
    lmtp.socket_mode whatever the umask."""
    import asyncio

    from maildesk.accept.smtp import listen_unix

    path = tmp_path / "lmtp.sock"
    path.write_text("left by a serve killed with -9")

    async def listen() -> int:
        server = await listen_unix(asyncio.Protocol, str(path), "0660", "")
        try:
            _, writer = await asyncio.open_unix_connection(str(path))
            writer.close()
            return path.stat().st_mode & 0o777
        finally:
            server.close()
            await server.wait_closed()

    old = os.umask(0o077)
    try:
        assert asyncio.run(listen()) == 0o660
    finally:
        os.umask(old)
