"""The daemons as ops run them: `maildesk serve` (+ `maildesk worker` on
Redis) with a local sink as relay. A mail sent to support@example.com is
acknowledged within 2 seconds; the reply to the acknowledgement, sent back
to the daemon, lands on the same ticket; the outbox shows it sent."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Desk
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink


def _story(desk: Desk, sink: Sink, port: int) -> None:
    sent_at = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("erika@kunde.de", ["support@example.com"],
                        make_mail(subject="Heizung", sender="Erika <erika@kunde.de>"))
    def acknowledgement() -> object:
        # a new customer also gets the address confirmation (auto-generated)
        return next((m for m in sink.to("erika@kunde.de")
                     if m["Auto-Submitted"] == "auto-replied"), None)

    ack = wait_until(acknowledgement, 10, 0.01)
    assert time.monotonic() - sent_at < 2.0, "acknowledgement took longer than 2 s"
    assert ack["Subject"] == "[#10001] Heizung"
    reply = make_mail(subject=f"AW: {ack['Subject']}", to=str(ack["Reply-To"]),
                      in_reply_to=str(ack["Message-ID"]), body="Danke!\n",
                      message_id="<danke@kunde.de>")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("erika@kunde.de", [str(ack["Reply-To"])], reply)
    wait_until(lambda: len(desk.show(10001)["messages"]) == 2)
    assert len(desk.list()) == 1
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    acknowledgement = [r for r in rows if r["kind"] == "acknowledgement"]
    assert acknowledgement and acknowledgement[0]["state"] == "sent"


def test_embedded_broker_serve_alone(desk: Desk, sink: Sink, tmp_path: Path) -> None:
    serve = start_serve(desk.env, tmp_path, MAILDESK_RELAY__PORT=str(sink.port))
    try:
        _story(desk, sink, serve.port)
    finally:
        assert serve.stop() == 0, serve.output()


def test_redis_broker_serve_and_worker(desk: Desk, sink: Sink, redis_url: str,
                                       tmp_path: Path) -> None:
    env = {**desk.env, "MAILDESK_RELAY__PORT": str(sink.port), "MAILDESK_BROKER__URL": redis_url}
    worker = subprocess.Popen([sys.executable, "-m", "maildesk", "worker"],
                              env={**os.environ, **env}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    serve = start_serve(env, tmp_path)
    try:
        _story(desk, sink, serve.port)
    finally:
        assert serve.stop() == 0, serve.output()
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
        assert worker.returncode == 0, output


def test_worker_refuses_to_run_on_the_embedded_broker(desk: Desk) -> None:
    result = desk.cli("worker")
    assert result.exit_code == 78 and "broker.url" in result.stderr


@pytest.mark.parametrize("command", [["outbox", "retry", "999"]])
def test_outbox_retry_of_unknown_row(desk: Desk, command: list[str]) -> None:
    result = desk.cli(*command)
    assert result.exit_code == 1 and "no such notification" in result.stderr
