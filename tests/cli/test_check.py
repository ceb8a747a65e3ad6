"""`maildesk check`: one OK/FAIL line per item, exit 1 on any failure."""

from __future__ import annotations

import json
import socket

from tests.conftest import Desk
from tests.daemon_helpers import free_port
from tests.mailsink import Sink


def test_all_ok_with_a_reachable_relay(desk: Desk, sink: Sink) -> None:
    desk.env.update({"MAILDESK_RELAY__PORT": str(sink.port),
                     "MAILDESK_SMTP__PORT": str(free_port()),
                     "MAILDESK_WEB__PORT": str(free_port())})
    result = desk.cli("check")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(line.startswith("OK") for line in lines)
    for item in ("config", "database", "data dir", "broker", "relay", "smtp listener",
                 "web listener"):
        assert any(item in line for line in lines), item


def test_failures_are_named_and_exit_1(desk: Desk) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        desk.env.update({"MAILDESK_RELAY__PORT": str(free_port()),
                         "MAILDESK_SMTP__PORT": str(port), "MAILDESK_WEB__PORT": str(port)})
        result = desk.cli("check", "--json")
    assert result.exit_code == 1
    items = {r["name"].split()[0]: r for r in json.loads(result.stdout)}
    # an unreachable relay is a warning: mail still comes in, notifications wait
    assert items["relay"]["warning"] and "refused" in items["relay"]["detail"]
    assert "wait in the outbox" in items["relay"]["detail"]
    # a plain socket holds both: nothing maildesk answers /healthz there
    assert not items["smtp"]["ok"] and items["smtp"]["detail"].startswith("in use by a program")
    assert not items["web"]["ok"] and items["web"]["detail"].startswith("in use by a program")
    assert items["database"]["ok"]


def test_broken_config_is_a_fail_line(desk: Desk) -> None:
    desk.env["MAILDESK_LIMITS__MAX_MESSAGE_BYTES"] = "viel"
    result = desk.cli("check")
    assert result.exit_code == 1
    assert result.stdout.startswith("FAIL  config:")
    assert "limits.max_message_bytes" in result.stdout
