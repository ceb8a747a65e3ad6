"""The API's whole story as an integration and a customer live it (issue #14),
over real sockets against `maildesk serve` + `maildesk worker` on Redis,
with a local SMTP sink as relay, on SQLite and PostgreSQL:

an integration opens a phone ticket by API; the customer gets the
acknowledgement at the sink and answers it by mail with a file; the agent
downloads that file by API and answers with a PDF that reaches the
customer's sink byte for byte, solving the ticket; the solution mail's
survey link opens the survey, and the rating given there is recorded."""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from maildesk.web.api import PREFIX
from tests.conftest import REPO, Desk
from tests.daemon_helpers import ServeProcess, free_port, port_open, start_serve
from tests.mailfactory import make_mail
from tests.mailsink import Sink

CUSTOMER = "erika.mustermann@kunde-e2e.de"
AGENT = "agent@example.com"
SUBJECT = "Drucker druckt nur leere Seiten"
#: A small but real PDF: header, one object, trailer, the end marker, and
#: every byte value (a transfer encoding that mangled any would show).
PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
       b"trailer\n<< /Root 1 0 R >>\n" + bytes(range(256)) * 4 + b"\n%%EOF\n")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
       b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05"
       b"\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
CSV = b"Datum;Seiten;Fehler\n2026-11-02;12;leer\n2026-11-03;7;Stau im Fach 2\n"
ANSWER = "Bitte spielen Sie die angehängte Firmware ein; danach druckt er wieder."


async def wait_for(check: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Poll `check` (sync or async) until it gives something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or check}")
        await asyncio.sleep(0.05)


@dataclass
class Daemon:
    """serve (SMTP + HTTP) and a worker on Redis, both real processes."""

    desk: Desk
    serve: ServeProcess
    web_port: int
    client: aiohttp.ClientSession
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.client.get(self.base + PREFIX + path, headers=self._auth()) as r:
            return r.status, await r.json(content_type=None)

    async def post_json(self, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        async with self.client.post(self.base + PREFIX + path, json=body,
                                    headers=self._auth()) as r:
            return r.status, dict(r.headers), await r.json(content_type=None)

    async def download(self, path: str) -> tuple[int, dict[str, str], bytes]:
        async with self.client.get(self.base + PREFIX + path, headers=self._auth()) as r:
            return r.status, dict(r.headers), await r.read()

    async def post_form(self, path: str, fields: dict[str, str],
                        files: list[tuple[str, str, bytes]]) -> tuple[int, Any]:
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value in fields.items():
            form.add_field(name, value)
        for filename, content_type, data in files:
            form.add_field("files", data, filename=filename, content_type=content_type)
        async with self.client.post(self.base + PREFIX + path, data=form,
                                    headers=self._auth()) as r:
            return r.status, await r.json(content_type=None)

    def smtp(self, mail_from: str, rcpt: str, raw: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", self.serve.port, timeout=10) as client:
            refused = client.sendmail(mail_from, [rcpt], raw)
        assert not refused, refused


@pytest.fixture
def processes(desk: Desk, sink: Sink, redis_url: str,
              tmp_path: Path) -> Iterator[tuple[ServeProcess, int]]:
    web_port = free_port()
    # the worker writes the mails: it needs the public URL of serve's web port too
    env = {**desk.env, "MAILDESK_RELAY__PORT": str(sink.port),
           "MAILDESK_BROKER__URL": redis_url, "MAILDESK_WEB__PORT": str(web_port),
           "MAILDESK_WEB__BASE_URL": f"http://127.0.0.1:{web_port}"}
    worker_log = tmp_path / "worker.log"
    with open(worker_log, "wb") as handle:
        worker = subprocess.Popen([sys.executable, "-m", "maildesk", "worker"],
                                  env={**os.environ, **env}, cwd=REPO,
                                  stdout=handle, stderr=subprocess.STDOUT)
    serve = None
    try:
        serve = start_serve(env, tmp_path, MAILDESK_WEB__PORT=str(web_port))
        deadline = time.monotonic() + 30
        while not port_open(web_port):
            assert time.monotonic() < deadline, serve.output()
            time.sleep(0.05)
        yield serve, web_port
    finally:
        code = serve.stop() if serve is not None else 0
        worker.terminate()
        worker.wait(timeout=30)
        assert code == 0, serve.output() if serve else ""
        assert worker.returncode == 0, worker_log.read_text(errors="replace")


@pytest.fixture
async def daemon(desk: Desk, processes: tuple[ServeProcess, int]) -> AsyncIterator[Daemon]:
    created = desk.cli("tokens", "create", "--agent", AGENT, "--name", "CRM")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    jar = aiohttp.CookieJar(unsafe=True)  # the survey form's CSRF cookie on 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        yield Daemon(desk, processes[0], processes[1], client, secret)


def _addresses(message: EmailMessage, header: str) -> list[str]:
    return [addr.lower() for _, addr in getaddresses([str(v) for v in
                                                      message.get_all(header, [])])]


def _mails_to(sink: Sink, address: str, subject_part: str) -> list[EmailMessage]:
    return [m for m in sink.to(address) if subject_part in str(m["Subject"])]


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None, message
    return str(body.get_content())


async def test_phone_ticket_answered_by_mail_with_a_file_and_solved_with_a_pdf(
        daemon: Daemon, sink: Sink) -> None:
    started = time.monotonic()

    # 1. the integration records the phone call
    status, headers, ticket = await daemon.post_json("/tickets", {
        "channel": "phone", "requester": {"email": CUSTOMER, "name": "Erika Mustermann"},
        "subject": SUBJECT, "text": "Kundin rief an: seit dem Update nur leere Seiten.",
        "acknowledge": True})
    assert status == 201, ticket
    number = ticket["number"]
    assert isinstance(number, int) and headers["Location"].endswith(f"/tickets/{number}")
    assert ticket["channel"] == "phone" and ticket["requester"]["email"] == CUSTOMER

    # 2. the acknowledgement reaches the customer, tagged and threadable
    tag = f"[#{number}]"
    acks = await wait_for(lambda: [m for m in sink.to(CUSTOMER)
                                   if m["Subject"] == f"{tag} {SUBJECT}"],
                          what="the acknowledgement at the sink")
    assert len(acks) == 1, [m["Subject"] for m in acks]
    ack = acks[0]
    # recorded for the customer, not an answer to a mail of theirs (RFC 3834)
    assert ack["Auto-Submitted"] == "auto-generated"
    assert _addresses(ack, "To") == [CUSTOMER]
    assert _addresses(ack, "From") == ["support@example.com"]
    reply_to = _addresses(ack, "Reply-To")
    assert len(reply_to) == 1 and re.fullmatch(r"support\+[^@]+@example\.com", reply_to[0])
    ack_id = str(ack["Message-ID"])
    assert re.fullmatch(r"<[^<>@\s]+@example\.com>", ack_id), ack_id
    assert str(number) in _text(ack)

    # 3. the customer answers the acknowledgement by mail, with two files
    answer_id = f"<antwort-{number}-{id(daemon)}@kunde-e2e.de>"
    raw = make_mail(subject=f"AW: {ack['Subject']}", sender=f"Erika Mustermann <{CUSTOMER}>",
                    to=reply_to[0], in_reply_to=ack_id, message_id=answer_id,
                    body="Hallo,\n\nanbei ein Foto der Seite und das Protokoll.\n\nErika\n",
                    attachments=[("seite.png", "image/png", PNG),
                                 ("druckprotokoll.csv", "text/csv", CSV)])
    assert f"References: {ack_id}".encode() in raw
    daemon.smtp(CUSTOMER, reply_to[0], raw)

    async def with_answer() -> Any:
        status, detail = await daemon.get_json(f"/tickets/{number}")
        assert status == 200, detail
        inbound = [m for m in detail["messages"]
                   if m["direction"] == "in" and m["inbound_id"] is not None]
        return inbound[0] if inbound else None

    answer = await wait_for(with_answer, what="the answer on the ticket")
    assert answer["message_id"].strip("<>") == answer_id.strip("<>")
    assert "Protokoll" in answer["text"]
    files = {a["filename"]: a for a in answer["attachments"]}
    assert set(files) == {"seite.png", "druckprotokoll.csv"}, answer["attachments"]
    assert files["seite.png"]["size"] == len(PNG)
    assert files["druckprotokoll.csv"]["size"] == len(CSV)
    status, listed = await daemon.get_json("/tickets")
    assert status == 200 and [t["number"] for t in listed["items"]] == [number], listed

    # 4. the agent downloads the customer's files, byte for byte
    status, headers, data = await daemon.download(f"/attachments/{files['seite.png']['id']}")
    assert status == 200 and data == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == 'inline; filename="seite.png"'  # a real image
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, data = await daemon.download(
        f"/attachments/{files['druckprotokoll.csv']['id']}")
    assert status == 200 and data == CSV
    assert headers["Content-Type"] == "text/csv"
    assert headers["Content-Disposition"].startswith('attachment; filename="druckprotokoll.csv"')

    # 5. the agent answers with a PDF and solves the ticket
    status, replied = await daemon.post_form(f"/tickets/{number}/replies",
                                             {"text": ANSWER, "solve": "true"},
                                             [("Firmware-Anleitung.pdf", "application/pdf", PDF)])
    assert status == 201, replied
    assert replied["number"] == number and replied["status"] == "solved"
    reply_id = f"<{replied['message_id'].strip('<>')}>"
    solutions = await wait_for(lambda: [m for m in _mails_to(sink, CUSTOMER, tag)
                                        if m["Message-ID"] == reply_id],
                               what="the solution mail at the sink")
    solution = solutions[0]
    assert _addresses(solution, "To") == [CUSTOMER]
    assert solution["Subject"].startswith(tag)
    assert _addresses(solution, "Reply-To") == reply_to
    # threads below the customer's answer (the stable ticket reference first)
    assert str(solution["References"]).split()[:2] == [f"<ticket-{number}@example.com>",
                                                       answer_id]
    # it answers the customer's mail, never itself
    assert solution["In-Reply-To"] == answer_id
    assert solution["Message-ID"] not in str(solution["References"]).split()
    assert solution["Auto-Submitted"] is None  # a person's answer
    pdfs = [p for p in solution.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1, [p.get_content_type() for p in solution.iter_attachments()]
    assert pdfs[0].get_filename() == "Firmware-Anleitung.pdf"
    assert pdfs[0].get_content() == PDF  # decoded bytes equal the upload exactly
    text = _text(solution)
    assert ANSWER in text
    survey = re.search(rf"{re.escape(daemon.base)}/csat/\S+", text)
    assert survey, text
    status, detail = await daemon.get_json(f"/tickets/{number}")
    assert status == 200 and detail["status"] == "solved" and detail["solved_at"]
    outgoing = [m for m in detail["messages"] if m["direction"] == "out"]
    assert [a["filename"] for m in outgoing for a in m["attachments"]] == [
        "Firmware-Anleitung.pdf"]

    # 6. the customer follows the survey link and rates
    async with daemon.client.get(survey.group(0)) as r:
        page = await r.text()
        assert r.status == 200, page
    assert f"#{number}" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page
    async with daemon.client.post(survey.group(0),
                                  data={"csrf": csrf.group(1), "score": "5"}) as r:
        thanks = await r.text()
        assert r.status == 200, thanks
    assert "Ihre Bewertung wurde gespeichert" in thanks
    status, detail = await daemon.get_json(f"/tickets/{number}")
    assert [e["new"] for e in detail["events"] if e["field"] == "csat"] == [
        "5 (very_satisfied)"], detail["events"]
    status, report = await daemon.get_json("/reports/csat")
    assert status == 200 and report["total"] == 1, report
    assert [(g["ratings"], g["average"]) for g in report["groups"]] == [(1, 5.0)], report

    assert time.monotonic() - started < 20, "the story took longer than 20 s"
