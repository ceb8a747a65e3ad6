"""`maildesk check` as ops use it: beside a running serve (before a
restart), on a fresh machine without a relay, with links in mails that
customers cannot reach safely; and a mistyped variable stops every command.

The serve here is a real process on free loopback ports; the ports held
"by another program" are real sockets.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
import subprocess
import sys

import pytest

from maildesk.cli.check import port_result, unreachable
from tests.conftest import REPO, Desk
from tests.daemon_helpers import free_port, port_open, start_serve, wait_until
from tests.mailsink import Sink

#: check reads the same config on either backend: SQLite keeps these fast
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def check(desk: Desk, **env: str) -> tuple[int, dict[str, dict]]:
    """The exit code and the items by kind ("smtp listener", "web base_url", "relay")."""
    desk.env.update(env)
    result = desk.cli("check", "--json")
    items = {}
    for r in json.loads(result.stdout):
        words = r["name"].split()
        items[" ".join(words[:2]) if words[0] in ("smtp", "web", "lmtp") else words[0]] = r
    return result.exit_code, items


@sqlite_only
def test_check_beside_a_running_serve_reports_its_ports_as_ok(desk: Desk, sink: Sink,
                                                              tmp_path) -> None:
    serve = start_serve(desk.env, tmp_path, MAILDESK_RELAY__PORT=str(sink.port))
    try:
        wait_until(lambda: port_open(serve.web_port), 20)  # start_serve waits for SMTP only
        code, items = check(desk, MAILDESK_RELAY__PORT=str(sink.port),
                            MAILDESK_SMTP__PORT=str(serve.port),
                            MAILDESK_WEB__PORT=str(serve.web_port))
        assert code == 0, [r for r in items.values() if not r["ok"]]
        for name in ("smtp listener", "web listener"):
            assert items[name]["ok"] and not items[name]["warning"], items[name]
            assert items[name]["detail"] == f"in use by maildesk serve, pid {serve.process.pid}"

        # the same serve answers, but another program holds the SMTP port asked for
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            code, items = check(desk, MAILDESK_SMTP__PORT=str(other.getsockname()[1]))
        assert code == 1
        smtp = items["smtp listener"]
        assert not smtp["ok"]
        assert f"not by the maildesk serve (pid {serve.process.pid})" in smtp["detail"]
        assert items["web listener"]["ok"]
    finally:
        assert serve.stop() == 0, serve.output()


@sqlite_only
def test_a_relay_nobody_answers_is_a_warning_that_says_what_to_do(desk: Desk) -> None:
    desk.env.update({"MAILDESK_RELAY__PORT": str(free_port()),
                     "MAILDESK_SMTP__PORT": str(free_port()),
                     "MAILDESK_WEB__PORT": str(free_port())})
    result = desk.cli("check")
    assert result.exit_code == 0, result.output  # mail still comes in; nothing is lost
    relay = next(line for line in result.stdout.splitlines() if " relay " in line)
    assert relay.startswith("WARN  relay 127.0.0.1:")
    assert "refused" in relay and "wait in the outbox" in relay
    assert "maildesk outbox retry" in relay and "aiosmtpd" in relay
    assert "about 64 min" in relay  # worker.max_attempts 8, backoff_seconds 30


@sqlite_only
def test_links_over_plain_http_to_a_public_address_are_a_warning(desk: Desk) -> None:
    ports = {"MAILDESK_SMTP__PORT": str(free_port()), "MAILDESK_WEB__PORT": str(free_port())}
    code, items = check(desk, **ports, MAILDESK_WEB__BASE_URL="http://support.example.com")
    assert code == 0
    base = items["web base_url"]
    assert base["ok"] and base["warning"] and "plain http" in base["detail"]
    assert "https://" in base["detail"]

    code, items = check(desk, MAILDESK_WEB__BASE_URL="https://support.example.com")
    assert items["web base_url"]["ok"] and not items["web base_url"]["warning"]

    del desk.env["MAILDESK_WEB__BASE_URL"]
    port = ports["MAILDESK_WEB__PORT"]
    code, items = check(desk)
    base = items["web base_url"]
    assert base["name"] == f"web base_url http://127.0.0.1:{port}"  # follows web.port
    assert not base["warning"] and "this machine only" in base["detail"]

    code, items = check(desk, MAILDESK_WEB__HOST="0.0.0.0")
    base = items["web base_url"]
    assert base["warning"] and "set web.base_url" in base["detail"]


@sqlite_only
def test_a_mistyped_variable_stops_commands_and_fails_check(desk: Desk) -> None:
    desk.env["MAILDESK_SMTP_PORT"] = "2626"
    result = desk.cli("tickets", "list")
    assert result.exit_code == 78
    assert "MAILDESK_SMTP_PORT" in result.output and "MAILDESK_SMTP__PORT" in result.output

    result = desk.cli("check")
    assert result.exit_code == 1
    assert result.stdout.startswith("FAIL  config:")
    assert "did you mean MAILDESK_SMTP__PORT?" in result.stdout


@sqlite_only
def test_serve_does_not_start_with_a_mistyped_variable(desk: Desk) -> None:
    env = {**desk.env, "MAILDESK_SMPT__PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "maildesk", "serve"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done.stderr
    assert "MAILDESK_SMPT__PORT" in done.stderr and "MAILDESK_SMTP__PORT" in done.stderr


def test_port_verdicts() -> None:
    """Every case of the pure decision (the real ones above cover two)."""
    assert port_result("smtp", "h", 1, None, "", None, "u").detail == "free"
    denied = port_result("smtp", "h", 25, errno.EACCES, "Permission denied", None, "u")
    assert not denied.ok and denied.detail == "Permission denied"
    off = port_result("smtp", "h", 25, errno.EADDRINUSE, "", None, None)
    assert not off.ok and "web is disabled" in off.detail
    nobody = port_result("smtp", "h", 25, errno.EADDRINUSE, "", None, "http://x/healthz")
    assert not nobody.ok and "nothing answers http://x/healthz" in nobody.detail


def test_only_a_relay_nobody_answers_is_a_mere_warning() -> None:
    assert unreachable(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert unreachable(TimeoutError("timed out"))
    assert unreachable(OSError(errno.EHOSTUNREACH, "no route"))
    assert not unreachable(socket.gaierror(-2, "Name or service not known"))  # a typo
    assert not unreachable(ssl.SSLError("wrong version number"))
    assert not unreachable(None)
