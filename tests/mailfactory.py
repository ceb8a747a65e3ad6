"""Build test mails as bytes, the way real clients send them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

_counter = itertools.count(1)


def make_mail(
    subject: str = "Frage zur Abrechnung",
    sender: str = "Erika Mustermann <erika@kunde.de>",
    to: str = "support@example.com",
    body: str = "Hallo,\n\nbitte um Rückruf.\n\nGruß\nErika\n",
    cc: str | None = None,
    message_id: str | None = "auto",
    in_reply_to: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # (filename, mime type, bytes)
    html: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    if sender:
        msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Date"] = format_datetime(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    if message_id == "auto":
        message_id = f"<test-{next(_counter)}-{id(msg)}@kunde.de>"
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, mime, data in attachments:
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


OUTLOOK_GERMAN = (
    b"Received: from mail.hausverwaltung-nord.de (mail.hausverwaltung-nord.de [192.0.2.10])\r\n"
    b"From: =?windows-1252?Q?J=FCrgen_M=FCller?= <j.mueller@hausverwaltung-nord.de>\r\n"
    b"To: \"Support\" <support@example.com>\r\n"
    b"CC: Petra Kr\xe4mer <p.kraemer@hausverwaltung-nord.de>\r\n"
    b"Subject: =?windows-1252?Q?AW:_Pr=FCfung_der_Nebenkostenabrechnung_f=FCr_Stra=DFe?=\r\n"
    b"Date: Mon, 2 Nov 2026 10:15:00 +0100\r\n"
    b"Message-ID: <AM0PR10MB1234.EURPRD10.PROD.OUTLOOK.COM@hausverwaltung-nord.de>\r\n"
    b"Thread-Topic: =?windows-1252?Q?Pr=FCfung_der_Nebenkostenabrechnung?=\r\n"
    b"Thread-Index: AdlPQ2Z3ZXJ0eXVpb3Bhc2RmZ2hqa2w=\r\n"
    b"Accept-Language: de-DE\r\n"
    b"Content-Language: de-DE\r\n"
    b"X-MS-Has-Attach: yes\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"_004_AM0PR10MB_\"\r\n"
    b"\r\n"
    b"--_004_AM0PR10MB_\r\n"
    b"Content-Type: text/plain; charset=\"windows-1252\"\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Sehr geehrte Damen und Herren,\r\n"
    b"\r\n"
    b"die Nebenkostenabrechnung f=FCr die Gro=DFe Stra=DFe 5 enth=E4lt einen Fehl=\r\n"
    b"er bei den Heizkosten. Bitte pr=FCfen Sie die =C4nderung.\r\n"
    b"\r\n"
    b"Mit freundlichen Gr=FC=DFen\r\n"
    b"J=FCrgen M=FCller\r\n"
    b"\r\n"
    b"--_004_AM0PR10MB_\r\n"
    b"Content-Type: application/pdf; name=\"=?windows-1252?Q?Pr=FCfbericht_M=E4rz.pdf?=\"\r\n"
    b"Content-Description: =?windows-1252?Q?Pr=FCfbericht_M=E4rz.pdf?=\r\n"
    b"Content-Disposition: attachment;\r\n"
    b" filename*=windows-1252''Pr%FCfbericht%20M%E4rz.pdf; size=23\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcOkw7bDvMOfCg==\r\n"
    b"\r\n"
    b"--_004_AM0PR10MB_--\r\n"
)
