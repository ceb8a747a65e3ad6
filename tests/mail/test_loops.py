"""maildesk.mail.automatic: which mails are automatic, and why.

Table-driven over realistic header sets; the mails go through parse_mail so
that the tests see what the pipeline sees. Bounces come from the builders in
tests/mail/test_parse_dsn.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from maildesk.mail.automatic import (
    auto_reply_reason,
    bounce_reason,
    is_noreply_address,
    receipt_reason,
)
from maildesk.mail.parse import parse_mail
from maildesk.types import ParsedMail
from tests.mail.test_parse_dsn import (
    BOUNCES,
    OUR_ID,
    exim_delay_warning,
    ordinary_mail,
    postfix_bounce,
    postfix_delay_warning,
    read_receipt,
)


def build(
    *headers: tuple[str, str],
    subject: str = "Ihre Anfrage",
    sender: str | None = "Max Mustermann <max.mustermann@firma.de>",
    return_path: str | None = "<max.mustermann@firma.de>",
    body: str = "Hallo,\n\nbitte um Rückruf.\n",
) -> ParsedMail:
    """Parse a mail with the given extra headers (CRLF, UTF-8, text/plain)."""
    lines = []
    if return_path is not None:
        lines.append(f"Return-Path: {return_path}")
    if sender is not None:
        lines.append(f"From: {sender}")
    lines += [
        "To: support@maildesk.example",
        f"Subject: {subject}",
        "Date: Mon, 2 Nov 2026 10:00:00 +0100",
        "Message-ID: <m-1@firma.de>",
        *(f"{name}: {value}" for name, value in headers),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    raw = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")
    return parse_mail(raw.encode("utf-8"))


# --------------------------------------------------------------------------
# auto-replies, bulk and list mail
# --------------------------------------------------------------------------

EXCHANGE_OOF = (
    ("Thread-Topic", "[Ticket#1001] Ihre Anfrage"),
    ("Thread-Index", "AQHZ0o1c2x3y4z5a6b7c8d9e0f=="),
    ("Content-Language", "de-DE"),
    ("X-MS-Has-Attach", ""),
    ("X-Auto-Response-Suppress", "All"),
    ("X-MS-Exchange-Inbox-Rules-Loop", "max.mustermann@firma.de"),
    ("X-MS-TNEF-Correlator", ""),
    ("Auto-Submitted", "auto-generated"),
)

AUTO_CASES: list[tuple[str, dict, str]] = [
    (
        "Exchange out-of-office, German",
        {"headers": EXCHANGE_OOF, "subject": "Automatische Antwort: [Ticket#1001] Ihre Anfrage"},
        "Auto-Submitted: auto-generated",
    ),
    (
        "Gmail vacation responder",
        {
            "headers": (
                ("Auto-Submitted", "auto-replied"),
                ("Precedence", "bulk"),
                ("X-Google-Smtp-Source", "AGHT+IFabc123"),
            ),
            "subject": "Re: Ihre Anfrage",
            "sender": "Erika Mustermann <erika.mustermann@gmail.com>",
            "return_path": "<erika.mustermann@gmail.com>",
        },
        "Auto-Submitted: auto-replied",
    ),
    (
        "Outlook.com automatic reply",
        {
            "headers": (
                ("X-Auto-Response-Suppress", "All"),
                ("Auto-Submitted", "auto-replied"),
                ("X-MS-Exchange-Generated-Message-Source", "OOF Assistant"),
            ),
            "subject": "Automatic reply: Your request",
            "sender": "John Doe <john.doe@outlook.com>",
        },
        "Auto-Submitted: auto-replied",
    ),
    (
        "Thunderbird user, Sieve vacation on the server (Dovecot Pigeonhole)",
        {
            "headers": (("Auto-Submitted", "auto-replied (vacation)"),),
            "subject": "Auto: Ihre Anfrage",
            "return_path": "<>",
        },
        "Auto-Submitted: auto-replied",
    ),
    (
        "Exchange inbox rule reply without Auto-Submitted",
        {"headers": (("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent"),)},
        "X-MS-Exchange-Generated-Message-Source",
    ),
    (
        "cPanel / Horde autoresponder",
        {"headers": (("X-Autoreply", "yes"), ("X-Autorespond", "Ihre Anfrage"))},
        "X-Autoreply",
    ),
    ("old autoresponder", {"headers": (("X-Autorespond", "Ihre Anfrage"),)}, "X-Autorespond"),
    ("autoresponder flag", {"headers": (("X-Autoresponder", "1"),)}, "X-Autoresponder"),
    (
        "Mailman 2 list",
        {
            "headers": (
                ("Precedence", "list"),
                ("List-Id", "Nutzer <nutzer.lists.example.org>"),
                ("List-Post", "<mailto:nutzer@lists.example.org>"),
            )
        },
        "Precedence: list",
    ),
    (
        "Sympa list without Precedence",
        {
            "headers": (
                ("List-Id", "<it-admins.listes.example.fr>"),
                ("List-Archive", "<https://listes.example.fr/arc/it-admins>"),
            )
        },
        "List-Id",
    ),
    (
        "newsletter",
        {
            "headers": (
                (
                    "List-Unsubscribe",
                    "<https://news.example.com/u/abc>, <mailto:u@news.example.com>",
                ),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Feedback-ID", "12345:news:campaign:esp"),
            ),
            "subject": "Unsere Angebote im November",
            "sender": "Shop <newsletter@shop.example.com>",
        },
        "List-Unsubscribe",
    ),
    ("procmail loop guard", {"headers": (("X-Loop", "helpdesk@firma.de"),)}, "X-Loop"),
    ("Precedence junk", {"headers": (("Precedence", "junk"),)}, "Precedence: junk"),
    (
        "Precedence auto_reply",
        {"headers": (("Precedence", "auto_reply"),)},
        "Precedence: auto_reply",
    ),
    (
        "Auto-Submitted with parameters",
        {"headers": (("Auto-Submitted", "Auto-Generated; owner-email=x@firma.de"),)},
        "Auto-Submitted: auto-generated",
    ),
    (
        "Exchange 2003 out-of-office without headers",
        {"subject": "Abwesenheitsnotiz: Ihre Anfrage"},
        "out-of-office subject",
    ),
    (
        "Lotus Notes out-of-office without headers",
        {"subject": "Max Mustermann ist abwesend."},
        "out-of-office subject",
    ),
    (
        "suppress header with an out-of-office phrase not at the start",
        {
            "headers": (("X-Auto-Response-Suppress", "All"),),
            "subject": "Re: Ihre Anfrage [Abwesenheitsnotiz]",
        },
        "X-Auto-Response-Suppress + out-of-office subject",
    ),
    (
        "inbox-rules-loop with an out-of-office phrase not at the start",
        {
            "headers": (("X-MS-Exchange-Inbox-Rules-Loop", "max@firma.de"),),
            "subject": "Max Mustermann - Automatic reply",
        },
        "X-MS-Exchange-Inbox-Rules-Loop + out-of-office subject",
    ),
    (
        "null Return-Path, person's From, ordinary subject",
        {"return_path": "<>", "subject": "Ihre Nachricht"},
        "Return-Path: <>",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "reason"), [c[1:] for c in AUTO_CASES], ids=[c[0] for c in AUTO_CASES]
)
def test_auto_reply_reason(kwargs: dict, reason: str) -> None:
    headers = kwargs.pop("headers", ())
    mail = build(*headers, **kwargs)
    assert auto_reply_reason(mail) == reason
    assert bounce_reason(mail) is None
    assert receipt_reason(mail) is None


PERSON_CASES: list[tuple[str, tuple[tuple[str, str], ...]]] = [
    ("plain customer mail", ()),
    ("Auto-Submitted: no", (("Auto-Submitted", "no"),)),
    ("Auto-Submitted: No (comment)", (("Auto-Submitted", "No (written by a person)"),)),
    ("X-Autoreply: no", (("X-Autoreply", "no"),)),
    ("X-Autorespond: false", (("X-Autorespond", "False"),)),
    ("Precedence: normal", (("Precedence", "normal"),)),
    ("Precedence: first-class", (("Precedence", "first-class"),)),
    # Outlook / Exchange put this on ordinary mail too (see the docstring).
    (
        "Outlook mail with X-Auto-Response-Suppress",
        (("X-Auto-Response-Suppress", "DR, OOF, AutoReply"),),
    ),
    ("meeting request with X-Auto-Response-Suppress: All", (("X-Auto-Response-Suppress", "All"),)),
    # A customer's inbox rule forwards or redirects their mail to support.
    (
        "redirected by an Exchange inbox rule",
        (("X-MS-Exchange-Inbox-Rules-Loop", "info@firma.de"),),
    ),
    ("Feedback-ID alone", (("Feedback-ID", "1:2:3:gmail"),)),
    ("empty Exchange generated source", (("X-MS-Exchange-Generated-Message-Source", ""),)),
]


@pytest.mark.parametrize("headers", [c[1] for c in PERSON_CASES], ids=[c[0] for c in PERSON_CASES])
def test_mail_a_person_wrote_is_not_automatic(headers: tuple[tuple[str, str], ...]) -> None:
    mail = build(*headers, subject="Drucker im 2. OG druckt nicht")
    assert auto_reply_reason(mail) is None
    assert bounce_reason(mail) is None
    assert receipt_reason(mail) is None


def test_weak_header_with_a_persons_subject_about_the_feature() -> None:
    """Suppress header + "Abwesenheitsnotiz ... ?" is a person asking."""
    mail = build(
        ("X-Auto-Response-Suppress", "All"),
        subject="Wie richte ich die Abwesenheitsnotiz ein?",
    )
    assert auto_reply_reason(mail) is None


OUT_OF_OFFICE_SUBJECTS = [
    "Automatische Antwort: [Ticket#1001] Ihre Anfrage",
    "AW: Automatische Antwort: Drucker",
    "Automatic reply: Printer broken",
    "RE: Automatic Reply: Printer broken",
    "Autoreply: Ihre Nachricht",
    "Auto-Reply: Re: Rechnung",
    "AutoAntwort: Ihre Nachricht",
    "Out of Office: Re: Rechnung",
    "Out of Office AutoReply: Rechnung",
    "Out of the office",
    "Out of office until 12 August",
    "Out-of-Office (bis 20.08.)",
    "Abwesenheitsnotiz",
    "Abwesenheitsnotiz: Ihre Anfrage",
    "Abwesenheitsnotiz (Urlaub)",
    "Abwesend bis 20.08.",
    "Abwesend: Re: Ihre Anfrage",
    "Ich bin nicht im Büro",
    "Ich bin bis 12.08. nicht im Büro",
    "Ich bin vom 1.8. bis 20.8. nicht im Büro.",
    "Ich bin derzeit nicht erreichbar",
    "Ich bin im Urlaub",
    "Ich bin ab dem 20.08. wieder im Büro",
    "Ich bin ab Montag wieder für Sie da",
    "Max Mustermann ist abwesend.",
    "Max Mustermann ist nicht im Büro",
    "John Doe is out of the office.",
    "I'm out of office Re: Notification of Incident",
    "Urlaub - automatische Antwort",
    "Urlaubsbedingt abwesend",
    "Abwesend wegen Urlaub bis 3. November",
    "Vacation reply: Your message",
    "On vacation until Monday",
    "Réponse automatique : Votre demande",
    "Réponse automatique d'absence",
    "Risposta automatica: Richiesta",
    "Respuesta automática: Pregunta",
    "[EXTERN] Automatische Antwort: Ihre Anfrage",
    "WG: Re: Out of Office: Rechnung",
    "AW[2]: Automatische Antwort: Rechnung",
]


@pytest.mark.parametrize("subject", OUT_OF_OFFICE_SUBJECTS)
def test_out_of_office_subjects(subject: str) -> None:
    assert auto_reply_reason(build(subject=subject)) == "out-of-office subject"


# Subjects people write to a helpdesk, many of them about exactly the
# features whose names autoresponders use.
NORMAL_SUBJECTS = [
    "Antwort auf Ihre Frage zur Rechnung",
    "AW: Ihre Antwort vom 3.11.",
    "Re: Automatische Rechnungsstellung funktioniert nicht",
    "Automatische Antwort einrichten – wie?",
    "Automatische Antwort einrichten",
    "Abwesenheitsnotiz in Outlook einrichten",
    "Abwesenheitsnotiz funktioniert nicht",
    "Out of Office funktioniert nicht",
    "Out of office reply not working",
    "Frage zu Urlaubsregelung",
    "Urlaubsantrag für August",
    "Urlaubsvertretung automatisch einrichten",
    "Automatische Urlaubsvertretung einrichten",
    "Kollegin im Urlaub abwesend – wer hat Zugriff?",
    "Abwesenheiten im Kalender falsch",
    "Büro-Umzug: Drucker im 2. OG",
    "Büro 3.14 ist kalt",
    "Ich bin nicht im Büro, wie komme ich an meine Mails?",
    "Ich bin nicht im Büro – bitte Rückruf auf dem Handy",
    "Ich bin ab Montag wieder im Büro, bitte Laptop vorbereiten",
    "Ich bin neu im Büro und brauche einen Zugang",
    "Nicht im Büro erreichbar – bitte Rückruf",
    "Auto: Unfallschaden melden",
    "Auto-Reply Funktion im Webshop",
    "Rückfrage zum automatischen Abgleich",
    "Antwort automatisch generiert?",
    "Vacation policy question",
    "Out of stock – replacement?",
    "Re: [Ticket#1001] Drucker",
    "Abwesend?",
]


@pytest.mark.parametrize("subject", NORMAL_SUBJECTS)
def test_normal_subjects_are_not_out_of_office(subject: str) -> None:
    assert auto_reply_reason(build(subject=subject)) is None


# --------------------------------------------------------------------------
# bounces and receipts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOUNCES)
def test_every_built_bounce_is_a_bounce(name: str) -> None:
    make, failed, _ = BOUNCES[name]
    mail = parse_mail(make(failed[0], OUR_ID))
    assert bounce_reason(mail) == "delivery status notification"
    assert receipt_reason(mail) is None


@pytest.mark.parametrize("raw", [postfix_delay_warning(), exim_delay_warning()])
def test_delay_warnings_are_bounces(raw: bytes) -> None:
    """Not a failure, but an MTA talking: never a ticket, never a reopen."""
    mail = parse_mail(raw)
    assert mail.report is not None and mail.report.delayed and not mail.report.failed
    assert bounce_reason(mail) == "delivery status notification"


def test_delivery_status_report_type_alone_is_a_bounce() -> None:
    """Even when nothing in the report could be read."""
    mail = replace(parse_mail(postfix_bounce()), report=None)
    assert bounce_reason(mail) == "delivery status notification"


@pytest.mark.parametrize(
    ("sender_header", "value"),
    [
        ("From", "MAILER-DAEMON@mx.example.org (Mail Delivery System)"),
        ("From", "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"),
        ("From", "postmaster@kunde.de"),
        ("From", "Mail Delivery System <Mail-Daemon@mx.example.net>"),
        ("From", "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@firma.de>"),
        ("Sender", "MAILER-DAEMON@mx.example.org"),
    ],
)
def test_mailer_daemon_senders(sender_header: str, value: str) -> None:
    headers = ((sender_header, value),) if sender_header == "Sender" else ()
    sender = value if sender_header == "From" else "Erika <erika@kunde.de>"
    mail = build(*headers, sender=sender, subject="Wartungsarbeiten am Mailserver")
    assert mail.report is None
    assert bounce_reason(mail) == "mailer-daemon sender"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sender": None},
        {"sender": "Shop <noreply@shop.example.com>"},
        {"subject": "Undeliverable: Ihre Anfrage"},
        {"subject": "Unzustellbar: Ihre Anfrage"},
        {"subject": "Mail delivery failed: returning message to sender"},
    ],
    ids=["no From", "noreply From", "Undeliverable", "Unzustellbar", "Exim subject"],
)
def test_empty_return_path_with_another_bounce_sign(kwargs: dict) -> None:
    """The rule on its own: parse_mail already reads a null-sender mail with
    a bounce subject as a (content-less) report, so that is taken away."""
    mail = build(return_path="<>", body="Irgendein Text ohne Bounce-Wortlaut.\n", **kwargs)
    assert bounce_reason(replace(mail, report=None)) == "empty Return-Path"
    assert bounce_reason(replace(mail, return_path=None, report=None)) is None


def test_empty_return_path_from_a_person_is_left_to_auto_reply() -> None:
    """An out-of-office reply uses <> too (RFC 3834); it is no bounce."""
    mail = build(
        ("Auto-Submitted", "auto-replied"),
        return_path="<>",
        subject="Automatische Antwort: Ihre Anfrage",
    )
    assert bounce_reason(mail) is None
    assert auto_reply_reason(mail) == "Auto-Submitted: auto-replied"


def test_read_receipt() -> None:
    mail = parse_mail(read_receipt())
    assert receipt_reason(mail) == "read receipt"
    assert bounce_reason(mail) is None  # empty Return-Path, but a person's From


def test_read_receipt_part_inside_another_container() -> None:
    """Some clients wrap the MDN in multipart/mixed; the part still counts."""
    raw = read_receipt().replace(
        b'multipart/report; report-type="disposition-notification";', b"multipart/mixed;"
    )
    mail = parse_mail(raw)
    assert mail.content_type == "multipart/mixed"
    assert receipt_reason(mail) == "read receipt"


def test_ordinary_mail_is_nothing_automatic() -> None:
    mail = parse_mail(ordinary_mail())
    assert (bounce_reason(mail), receipt_reason(mail), auto_reply_reason(mail)) == (None,) * 3


# --------------------------------------------------------------------------
# noreply addresses
# --------------------------------------------------------------------------

NOREPLY = [
    "noreply@shop.de",
    "no-reply@accounts.google.com",
    "No_Reply@bank.de",
    "no.reply@verein.de",
    "donotreply@bank.de",
    "do-not-reply@stadtwerke.de",
    "do_not_reply@x.de",
    "DoNotReply@microsoft.com",
    "dont-reply@x.de",
    "noreply-12345@x.de",
    "noreply1@x.de",
    "shop-noreply@x.de",
    "noreply+abc@x.de",
    "noresponse@x.de",
    "do-not-respond@x.de",
    "MAILER-DAEMON@mx.de",
    "mailer-daemon",
    "<postmaster@x.de>",
    "mail-daemon@x.de",
    "bounce@x.de",
    "bounces@lists.example.org",
    "bounces+123-abc=kunde.de@sendgrid.net",
    "bounce-mc.us1_123.456-abc@mail.mcsv.net",
    "msprvs1=19c2=bounces-12345@x.de",
    "notifications@github.com",
    "notification@facebookmail.com",
    "jira-notifications@firma.de",
]

NOT_NOREPLY = [
    "norbert@kunde.de",
    "nora.reply@kunde.de",
    "bruno.reply@kunde.de",
    "reply@kunde.de",
    "bounce-back-rehab@physio.de",
    "bouncer.tom@club.de",
    "erika@kunde.de",
    "info@kunde.de",
    "post@kunde.de",
    "mailer@kunde.de",
    "daemon.hunter@x.de",
    "nobody@kunde.de",
    "notify.anna@x.de",
    "",
    "@x.de",
]


@pytest.mark.parametrize("address", NOREPLY)
def test_noreply_addresses(address: str) -> None:
    assert is_noreply_address(address)


@pytest.mark.parametrize("address", NOT_NOREPLY)
def test_people_are_not_noreply(address: str) -> None:
    assert not is_noreply_address(address)
