"""Files both ways (issue #14) over real HTTP, on SQLite and PostgreSQL:
an agent's reply and note take multipart uploads (refused by name over the
limits, nothing written), every stored file is downloaded byte for byte
with the type its bytes show, a safe Content-Disposition, nosniff and a
sandboxing CSP; the raw mail of an inbound message; the signed links of
agent notices refuse a forged, a re-purposed and an expired token; and the
CLI's --attach and `attachments get`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from maildesk.config import load_settings
from maildesk.models import utcnow
from maildesk.secret import load_secret
from maildesk.tickets import links
from maildesk.web import server as web_server
from maildesk.web.api import PREFIX
from maildesk.web.metrics import DaemonMetrics
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail
from tests.web.test_api import Api, assert_problem, token

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n" + bytes(
    range(256)) * 8
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
       b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05"
       b"\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
HTML = b"<!DOCTYPE html><html><head><script>alert(document.cookie)</script></head></html>"
LIMIT = 200_000


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[Api]:
    """The API with limits.max_attachment_bytes lowered, so a refusal is cheap."""
    desk.env["MAILDESK_LIMITS__MAX_ATTACHMENT_BYTES"] = str(LIMIT)
    desk.settings = load_settings(REPO / "maildesk.toml", desk.env)
    settings = desk.settings.model_copy(update={
        "web": desk.settings.web.model_copy(update={"port": 0})})
    engine = desk.engine()
    runner = await web_server.start_web(settings, engine, DaemonMetrics(lambda: []),
                                        lambda ids: None)
    async with aiohttp.ClientSession() as client:
        try:
            yield Api(desk, runner.addresses[0][1], client)
        finally:
            await runner.cleanup()
            engine.dispose()


def _url(api: Api, path: str) -> str:
    return f"http://127.0.0.1:{api.port}{path}"


async def _download(api: Api, path: str, secret: str | None = None
                    ) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    async with api.client.get(_url(api, path), headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def _post_form(api: Api, path: str, secret: str, fields: dict[str, str],
                     files: list[tuple[str, str, bytes]]) -> tuple[int, Any]:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    for filename, content_type, data in files:
        form.add_field("files", data, filename=filename, content_type=content_type)
    async with api.client.post(_url(api, PREFIX + path), data=form,
                               headers={"Authorization": f"Bearer {secret}"}) as response:
        return response.status, await response.json(content_type=None)


def _ticket(desk: Desk) -> int:
    _, out = desk.ingest(make_mail(subject="Rechnung fehlt", sender="kunde@firma.de",
                                   message_id=f"<files-{id(desk)}@firma.de>",
                                   attachments=[("scan.png", "image/png", PNG)]))
    return out["ticket"]


def _files_of(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["filename"]: {**a, "direction": m["direction"]}
            for m in detail["messages"] for a in m["attachments"]}


async def test_a_reply_with_files_is_stored_and_each_file_comes_back_byte_for_byte(
        api: Api) -> None:
    number = _ticket(api.desk)
    secret = token(api.desk)
    status, body = await _post_form(api, f"/tickets/{number}/replies", secret,
                                    {"text": "Anbei die Rechnung.", "solve": "false"},
                                    [("../Rechnung Müller.pdf", "application/pdf", PDF),
                                     ("invoice.pdf", "application/pdf", HTML)])
    assert status == 201, body
    status, _, detail = await api.get(f"/tickets/{number}", secret)
    files = _files_of(detail)
    # the name is made safe (no directory part);
    # a web page calling itself a PDF is stored as what it is
    assert files["Rechnung Müller.pdf"]["direction"] == "out"
    assert files["invoice.pdf"]["content_type"] == "text/html"
    assert [e for e in detail["events"] if "Rechnung Müller.pdf" in (e["new"] or "")]

    pdf = files["Rechnung Müller.pdf"]
    status, headers, data = await _download(api, f"{PREFIX}/attachments/{pdf['id']}", secret)
    assert status == 200 and data == PDF
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"Rechnung M_ller.pdf\"; "
        "filename*=UTF-8''Rechnung%20M%C3%BCller.pdf")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("sandbox")

    html = files["invoice.pdf"]
    status, headers, data = await _download(api, f"{PREFIX}/attachments/{html['id']}", secret)
    assert status == 200 and data == HTML
    assert headers["Content-Type"].startswith("text/html")  # never "pdf" for a page
    assert headers["Content-Disposition"].startswith('attachment; filename="invoice.pdf"')
    assert headers["Content-Security-Policy"].startswith("sandbox")

    png = files["scan.png"]  # the customer's file: a real image is shown inline
    status, headers, data = await _download(api, f"{PREFIX}/attachments/{png['id']}", secret)
    assert status == 200 and data == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline;")


async def test_a_note_takes_files_and_a_refused_file_is_named_and_nothing_is_written(
        api: Api) -> None:
    number = _ticket(api.desk)
    secret = token(api.desk)
    status, detail = await _post_form(api, f"/tickets/{number}/notes", secret,
                                      {"text": "Log vom Kunden"},
                                      [("server.log", "text/plain", b"line\n" * 100)])
    assert status == 201 and _files_of(detail)["server.log"]["direction"] == "internal"
    before = (await api.get(f"/tickets/{number}", secret))[2]

    big = b"x" * (LIMIT + 1)
    for path in (f"/tickets/{number}/replies", f"/tickets/{number}/notes"):
        status, problem = await _post_form(api, path, secret, {"text": "Zu groß"},
                                           [("ok.txt", "text/plain", b"fine"),
                                            ("dump.bin", "application/octet-stream", big)])
        assert status == 413 and problem["filename"] == "dump.bin", problem
        assert "dump.bin" in problem["detail"] and "max_attachment_bytes" in problem["detail"]
        status, problem = await _post_form(api, path, secret, {"text": "Leer"},
                                           [("empty.txt", "text/plain", b"")])
        assert status == 413 and problem["filename"] == "empty.txt"
    after = (await api.get(f"/tickets/{number}", secret))[2]
    assert after["messages"] == before["messages"] and after["events"] == before["events"]

    # a form without text, or with a field twice, is a 422 naming it
    status, problem = await _post_form(api, f"/tickets/{number}/notes", secret, {}, [])
    assert status == 422 and problem["field"] == "text"
    async with api.client.post(_url(api, f"{PREFIX}/tickets/{number}/notes"),
                               data=b"text=hallo", headers={
                                   "Authorization": f"Bearer {secret}",
                                   "Content-Type": "application/x-www-form-urlencoded"}) as r:
        assert r.status == 415


async def test_files_are_read_by_no_one_without_a_token(api: Api) -> None:
    number = _ticket(api.desk)
    secret = token(api.desk)
    detail = (await api.get(f"/tickets/{number}", secret))[2]
    png = _files_of(detail)["scan.png"]
    inbound = next(m for m in detail["messages"] if m["inbound_id"])
    for path in (f"/attachments/{png['id']}", f"/messages/{inbound['id']}/raw"):
        for attempt in (None, "mdk_" + "x" * 43):
            status, headers, data = await _download(api, PREFIX + path, attempt)
            assert status == 401 and PNG not in data and b"Rechnung" not in data
    status, headers, body = await api.get("/attachments/999999", secret)
    assert_problem(status, headers, body, 404)
    status, headers, body = await api.get("/attachments/abc", secret)
    assert_problem(status, headers, body, 422)


async def test_the_raw_mail_of_an_inbound_message_is_its_accepted_bytes(api: Api) -> None:
    raw = make_mail(subject="Roh", sender="roh@firma.de", message_id="<raw-1@firma.de>")
    _, out = api.desk.ingest(raw)
    secret = token(api.desk)
    detail = (await api.get(f"/tickets/{out['ticket']}", secret))[2]
    inbound = detail["messages"][0]
    status, headers, data = await _download(api, f"{PREFIX}/messages/{inbound['id']}/raw",
                                            secret)
    assert status == 200 and data == raw
    assert headers["Content-Type"] == "message/rfc822"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert ".eml" in headers["Content-Disposition"]
    # an agent's reply came by no mail: no raw bytes, said so
    await api.post(f"/tickets/{out['ticket']}/replies", secret, {"text": "Danke"})
    detail = (await api.get(f"/tickets/{out['ticket']}", secret))[2]
    reply = next(m for m in detail["messages"] if m["direction"] == "out")
    status, headers, body = await api.get(f"/messages/{reply['id']}/raw", secret)
    assert_problem(status, headers, body, 404)


async def test_a_notice_link_opens_its_file_and_no_other(api: Api) -> None:
    number = _ticket(api.desk)
    detail = (await api.get(f"/tickets/{number}", token(api.desk)))[2]
    file_id = _files_of(detail)["scan.png"]["id"]
    secret = load_secret(api.desk.settings)
    good = links.make_token(secret, "file", file_id, utcnow(), 14)
    status, headers, data = await _download(api, f"/files/{good}")
    assert status == 200 and data == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Security-Policy"].startswith("sandbox")
    assert headers["X-Content-Type-Options"] == "nosniff"

    subject, expiry, signature = good.split(".")
    other = "a" if signature[0] != "a" else "b"
    refused = {
        "tampered": f"{subject}.{expiry}.{other}{signature[1:]}",
        "another file": f"{int(subject) + 1}.{expiry}.{signature}",
        "stretched": f"{subject}.zzzz.{signature}",
        "a survey token": links.make_token(secret, "csat", file_id, utcnow(), 14),
        "another secret": links.make_token(b"not ours", "file", file_id, utcnow(), 14),
        "nonsense": "../../etc/passwd",
    }
    for why, bad in refused.items():
        status, _, data = await _download(api, f"/files/{bad}")
        assert status == 404, why
        assert PNG not in data
    expired = links.make_token(secret, "file", file_id, utcnow() - timedelta(days=30), 14)
    status, _, data = await _download(api, f"/files/{expired}")
    assert status == 410 and PNG not in data
    gone = links.make_token(secret, "file", 999_999, utcnow(), 14)  # signed, but no file
    assert (await _download(api, f"/files/{gone}"))[0] == 404


def test_the_cli_attaches_files_and_gets_them_back(desk: Desk, tmp_path: Path) -> None:
    desk.env["MAILDESK_LIMITS__MAX_ATTACHMENT_BYTES"] = str(LIMIT)
    number = _ticket(desk)
    pdf = tmp_path / "Angebot.pdf"
    pdf.write_bytes(PDF)
    done = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                    "--text", "Anbei das Angebot.", "--attach", str(pdf))
    assert done.exit_code == 0, done.output
    assert "1 file(s) attached" in done.output
    note = desk.cli("tickets", "note", str(number), "--agent", "agent@example.com",
                    "--text", "intern", "--attach", str(pdf))
    assert note.exit_code == 0, note.output
    files = _files_of(desk.show(number))
    assert files["Angebot.pdf"]["content_type"] == "application/pdf"

    out = tmp_path / "back.pdf"
    got = desk.cli("attachments", "get", str(files["Angebot.pdf"]["id"]), "-o", str(out))
    assert got.exit_code == 0, got.output
    assert out.read_bytes() == PDF
    again = desk.cli("attachments", "get", str(files["Angebot.pdf"]["id"]), "-o", str(out))
    assert again.exit_code == 1 and "--force" in again.output
    missing = desk.cli("attachments", "get", "999999", "-o", str(tmp_path / "x"))
    assert missing.exit_code == 1 and "no attachment 999999" in missing.output
    text = desk.cli("tickets", "show", str(number)).stdout
    assert f"attachment {files['Angebot.pdf']['id']}: Angebot.pdf" in text

    big = tmp_path / "dump.bin"
    big.write_bytes(b"x" * (LIMIT + 1))
    before = json.dumps(desk.show(number)["messages"])
    refused = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                       "--text", "zu groß", "--attach", str(pdf), "--attach", str(big))
    assert refused.exit_code == 2
    assert "dump.bin" in refused.output and "max_attachment_bytes" in refused.output
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    refused = desk.cli("tickets", "note", str(number), "--agent", "agent@example.com",
                       "--text", "leer", "--attach", str(empty))
    assert refused.exit_code == 2 and "empty.txt" in refused.output
    assert json.dumps(desk.show(number)["messages"]) == before


async def test_a_broken_form_is_a_400_and_writes_nothing(api: Api) -> None:
    number = _ticket(api.desk)
    secret = token(api.desk)
    before = (await api.get(f"/tickets/{number}", secret))[2]
    for raw in (b"--b\r\n123--b--\r\n", b"--b\r\nContent-Disposition: form-data\r\n",
                b"not a form at all"):
        status, headers, problem = await api.post(
            f"/tickets/{number}/replies", secret, raw=raw,
            content_type="multipart/form-data; boundary=b")
        assert_problem(status, headers, problem, 400)
    assert (await api.get(f"/tickets/{number}", secret))[2] == before
