"""`maildesk serve` over real sockets: what an MTA (or a misbehaving client)
meets at the SMTP and LMTP listeners."""

from __future__ import annotations

import asyncio
import json
import signal
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session, select

from maildesk.accept import smtp as smtp_listener
from maildesk.accept.smtp import NOT_OURS, QUEUED, RCPT_OK, TEMPFAIL, TOO_BIG, TOO_MANY
from maildesk.accept.smtp import code as reply_code
from maildesk.models import InboundMail
from tests.conftest import BACKENDS, Desk
from tests.daemon_helpers import (
    ServeProcess,
    free_port,
    module_desk,
    port_open,
    start_serve,
    wait_until,
)
from tests.mailfactory import OUTLOOK_GERMAN, make_mail


@dataclass
class Served:
    """The module's one `maildesk serve` and its desk."""

    desk: Desk
    process: ServeProcess

    @property
    def port(self) -> int:
        return self.process.port


@pytest.fixture(scope="module", params=BACKENDS)
def daemon(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One daemon per backend for the tests below: they only need it up and
    tell their own mails apart (subjects, counts before and after)."""
    root = tmp_path_factory.mktemp(f"smtp-{request.param}")
    with module_desk(request.param, root) as desk:
        process = start_serve(desk.env, root, MAILDESK_SMTP__MAX_CONNECTIONS="4",
                              MAILDESK_LIMITS__MAX_MESSAGE_BYTES="300000")
        try:
            yield Served(desk, process)
        finally:
            code = process.stop()
        assert code == 0, process.output()


@pytest.fixture
def serve(daemon: Served) -> Iterator[Served]:
    """The shared daemon, checked after each test: still running, every
    session closed and every accepted mail processed, so the next test
    starts from a quiet daemon (and one left hanging fails here)."""
    assert daemon.process.process.poll() is None, daemon.process.output()
    yield daemon
    assert daemon.process.process.poll() is None, daemon.process.output()
    wait_until(lambda: daemon.process.sessions_active() == 0)
    wait_until(lambda: pending_count(daemon.desk) == 0)


def inbound_count(desk: Desk) -> int:
    with Session(desk.engine()) as session:
        return len(session.exec(select(InboundMail)).all())


def pending_count(desk: Desk) -> int:
    with Session(desk.engine()) as session:
        return len(session.exec(select(InboundMail).where(InboundMail.state != "done")).all())


def last_inbound_id(desk: Desk) -> int:
    with Session(desk.engine()) as session:
        return max(session.exec(select(InboundMail.id)).all(), default=0)


def ticket_count(desk: Desk) -> int:
    return len(desk.list("--limit", "10000"))


def tickets_about(desk: Desk, subject: str) -> list[dict]:
    return [t for t in desk.list("--limit", "10000") if t["subject"] == subject]


def test_accepts_support_mail_and_refuses_relaying(serve: Served) -> None:
    desk = serve.desk
    before = ticket_count(desk)
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        code, features = client.ehlo()
        assert code == 250 and b"SIZE 300000" in features and b"SMTPUTF8" in features
        refused = client.sendmail("j.mueller@hausverwaltung-nord.de", ["support@example.com"],
                                  OUTLOOK_GERMAN)
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as foreign:
            client.sendmail("x@y.de", ["someone@elsewhere.org"], make_mail())
        assert foreign.value.recipients["someone@elsewhere.org"][0] == reply_code(NOT_OURS)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
            client.sendmail("x@y.de", ["sales@example.com"], make_mail())
        assert unknown.value.recipients["sales@example.com"][0] == reply_code(NOT_OURS)
    wait_until(lambda: ticket_count(desk) == before + 1)
    (ticket,) = tickets_about(desk, "AW: Prüfung der Nebenkostenabrechnung für Straße")
    assert ticket["status"] == "new"


def test_plus_address_accepted_and_mixed_recipients(serve: Served) -> None:
    before = ticket_count(serve.desk)
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        refused = client.sendmail("a@kunde.de", ["Support+abc@Example.com", "x@elsewhere.org"],
                                  make_mail(subject="plus"))
    assert list(refused) == ["x@elsewhere.org"]
    wait_until(lambda: ticket_count(serve.desk) == before + 1)
    assert len(tickets_about(serve.desk, "plus")) == 1


def test_oversized_mail_gets_552_and_nothing_is_stored(serve: Served) -> None:
    before = inbound_count(serve.desk)
    big = make_mail(attachments=[("big.bin", "application/octet-stream", b"x" * 400_000)])
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPSenderRefused) as err:  # SIZE= in MAIL FROM
            client.sendmail("a@kunde.de", ["support@example.com"], big)
        assert err.value.smtp_code == TOO_BIG
        # a client that ignores SIZE: refused after DATA
        client.mail("a@kunde.de")
        client.rcpt("support@example.com")
        code, _ = client.data(big)
        assert code == TOO_BIG
    assert inbound_count(serve.desk) == before


def test_garbage_commands_get_errors_and_the_daemon_stays_up(serve: Served) -> None:
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        for garbage in (b"HELLO THERE", b"\x00\xff\xfe binary", b"MAIL FROM:<<<>>>",
                        b"RCPT TO:", b"DATA", b"A" * 5000):
            sock.sendall(garbage + b"\r\n")
            reply = reader.readline()
            assert reply[:1] in (b"5",), (garbage, reply)
        reader.close()
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        assert client.noop()[0] == 250


def test_smtputf8_8bitmime_and_long_lines_are_taken_intact(serve: Served) -> None:
    desk = serve.desk
    before, last = ticket_count(desk), last_inbound_id(desk)
    long_line = ("Sehr lange Zeile ohne Umbruch " * 100).encode()  # ~3,000 bytes
    raw = (b"From: J\xc3\xbcrgen <j\xc3\xbcrgen@b\xc3\xbcro.de>\r\nTo: support@example.com\r\n"
           b"Subject: Gr\xc3\xbc\xc3\x9fe\r\nMessage-ID: <utf8@b\xc3\xbcro.de>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + long_line + b"\r\nEnde\r\n")
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        client.ehlo()
        client.sendmail("jürgen@büro.de", ["support@example.com"], raw,
                        mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    wait_until(lambda: ticket_count(desk) == before + 1)
    (listed,) = tickets_about(desk, "Grüße")
    ticket = desk.show(listed["number"])
    assert long_line.decode() in ticket["messages"][0]["text"]
    inbound_id = last_inbound_id(desk)
    assert inbound_id == last + 1  # this mail's row, the only one since
    raw_stored = desk.cli("inbound", "raw", str(inbound_id)).stdout_bytes
    assert raw_stored == raw


def test_disconnect_in_the_middle_of_data_stores_nothing(serve: Served) -> None:
    before_inbound, before_tickets = inbound_count(serve.desk), ticket_count(serve.desk)
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for line in (b"EHLO test", b"MAIL FROM:<a@kunde.de>", b"RCPT TO:<support@example.com>",
                     b"DATA"):
            sock.sendall(line + b"\r\n")
            while True:
                reply = reader.readline()
                if reply[3:4] != b"-":
                    break
        assert reply.startswith(b"354")
        sock.sendall(b"Subject: halb\r\n\r\nDer Anfang einer Mail")
        reader.close()  # makefile() keeps the socket open until it is closed
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        assert client.noop()[0] == 250  # still up
    assert inbound_count(serve.desk) == before_inbound
    assert ticket_count(serve.desk) == before_tickets


def test_connections_beyond_the_limit_get_421(serve: Served) -> None:
    assert serve.process.sessions_active() == 0  # all four places free
    held = [smtplib.SMTP("127.0.0.1", serve.port, timeout=10) for _ in range(4)]
    try:
        with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as extra, \
                extra.makefile("rb") as reader:
            assert reader.readline() == TOO_MANY
    finally:
        for client in held:
            client.quit()
    wait_until(lambda: _greets(serve.port))


def _greets(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            sock.makefile("rb") as reader:
        return reader.readline().startswith(b"220")


def test_lmtp_gives_one_status_per_recipient(desk: Desk, tmp_path: Path) -> None:
    lmtp_port = free_port()
    serve = start_serve(desk.env, tmp_path, MAILDESK_LMTP__ENABLED="true",
                        MAILDESK_LMTP__PORT=str(lmtp_port))
    try:
        wait_until(lambda: port_open(lmtp_port) and _greets(lmtp_port))
        with socket.create_connection(("127.0.0.1", lmtp_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            reader.readline()

            def command(line: bytes) -> list[bytes]:
                sock.sendall(line + b"\r\n")
                replies = [reader.readline()]
                while replies[-1][3:4] == b"-":
                    replies.append(reader.readline())
                return replies

            assert command(b"LHLO mta.example.com")[0].startswith(b"250")
            assert command(b"MAIL FROM:<a@kunde.de>")[0].startswith(b"250")
            assert command(b"RCPT TO:<support@example.com>")[0].rstrip() == RCPT_OK.encode()
            assert command(b"RCPT TO:<support+x@example.com>")[0].rstrip() == RCPT_OK.encode()
            refused = command(b"RCPT TO:<nobody@elsewhere.org>")[0]
            assert reply_code(refused) == reply_code(NOT_OURS)
            assert command(b"DATA")[0].startswith(b"354")
            sock.sendall(make_mail(subject="per LMTP").replace(b"\n", b"\r\n")
                         .replace(b"\r\r\n", b"\r\n") + b"\r\n.\r\n")
            statuses = [reader.readline(), reader.readline()]
            queued = QUEUED.split("{")[0].encode()  # "250 2.0.0 OK queued as "
            assert all(s.startswith(queued) for s in statuses), statuses
            sock.sendall(b"QUIT\r\n")
            reader.close()
        wait_until(lambda: ticket_count(desk) == 1)
    finally:
        assert serve.stop() == 0


def test_replay_reruns_a_failed_mail(desk: Desk) -> None:
    raw = make_mail(subject="später nochmal")
    assert desk.ingest(raw)[1]["action"] == "created"
    with Session(desk.engine()) as session:
        row = session.exec(select(InboundMail)).one()
        row.state, row.outcome, row.error = "failed", None, "RuntimeError: simulated"
        session.add(row)
        session.commit()
        inbound_id = row.id
    result = desk.cli("replay", str(inbound_id))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["inbound"] == inbound_id and out["action"] in ("created", "appended")
    again = json.loads(desk.cli("replay", str(inbound_id)).stdout)
    assert "nothing done" in again["note"]


def test_store_failure_answers_451_not_500(tmp_path: Path) -> None:
    """The handler alone on a real socket: the spool raises -> 451 4.3.0."""

    async def broken_store(incoming: object) -> object:
        raise OSError("disk gone")

    async def scenario() -> tuple[int, bytes]:
        stats = smtp_listener.ListenerStats()
        handler = smtp_listener.MaildeskHandler(lambda a: a.endswith("@example.com"),
                                                broken_store, "smtp", stats)
        config = smtp_listener.ListenerConfig("smtp", "test", 10_000_000, 10, 30)
        server = await asyncio.get_running_loop().create_server(
            smtp_listener.protocol_factory(config, handler, stats), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        def send() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo()
                client.mail("a@kunde.de")
                client.rcpt("support@example.com")
                return client.data(make_mail())

        try:
            return await asyncio.to_thread(send)
        finally:
            server.close()

    code, message = asyncio.run(scenario())
    assert f"{code} {message.decode()}" == TEMPFAIL


def test_sigterm_exits_zero_and_unprocessed_mail_is_drained_on_start(
    desk: Desk, tmp_path: Path
) -> None:
    from maildesk.accept.spool import Incoming, accept

    (accepted,) = accept(desk.engine(), [Incoming(make_mail(subject="liegen geblieben"), "smtp")])
    serve = start_serve(desk.env, tmp_path)  # crash recovery: the pending row is processed
    wait_until(lambda: ticket_count(desk) == 1)
    assert serve.stop(signal.SIGTERM) == 0
    assert "SIGTERM received" in serve.output()
    assert accepted.inbound_id == 1


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_starttls_when_configured_and_json_logs(desk: Desk, tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    serve = start_serve(desk.env, tmp_path, MAILDESK_SMTP__TLS_CERT=str(cert),
                        MAILDESK_SMTP__TLS_KEY=str(key), MAILDESK_LOG__FORMAT="json")
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=context)
            client.sendmail("a@kunde.de", ["support@example.com"],
                            make_mail(subject="verschlüsselt", message_id="<tls@kunde.de>"))
        wait_until(lambda: ticket_count(desk) == 1)
    finally:
        assert serve.stop() == 0
    lines = [json.loads(line) for line in serve.output().splitlines() if line.startswith("{")]
    about_mail = [line for line in lines if line.get("message_id") == "tls@kunde.de"]
    assert any(line.get("ticket") == 10001 for line in about_mail), about_mail
    assert all({"time", "level", "message"} <= set(line) for line in lines)
