"""display_text: the new text of a mail, without quoted history and signature.

Each case is a plain-text body as a mail client writes it and the exact text
an agent should see. The second table holds mails that must come back whole:
cutting a real answer is the one thing display_text must never do.
"""

from __future__ import annotations

import timeit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.mail.quoting import display_text

# The notification maildesk sent, as it comes back quoted in a reply.
NOTICE = """\
## Bitte oberhalb dieser Zeile antworten ##

Guten Tag Frau Mustermann,

wir haben Ihre Anfrage erhalten und melden uns schnellstmöglich.

Ihr Support-Team
[ref:10042.abcdefghijklm]"""


def quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


# (case, mail body, what the agent sees)
CUT: list[tuple[str, str, str]] = [
    (
        "outlook-de-header-block",
        "Hallo Herr Müller,\n"
        "\n"
        "vielen Dank, das hat funktioniert. Die Buchung ist jetzt durch.\n"
        "\n"
        "Mit freundlichen Grüßen\n"
        "Erika Mustermann\n"
        "Hausverwaltung Mustermann GmbH\n"
        "\n"
        "Von: Support <support@maildesk.example>\n"
        "Gesendet: Montag, 2. November 2026 10:15\n"
        "An: Erika Mustermann <erika@example.de>\n"
        "Betreff: [#10042] Buchung schlägt fehl\n"
        "\n" + NOTICE + "\n",
        "Hallo Herr Müller,\n"
        "\n"
        "vielen Dank, das hat funktioniert. Die Buchung ist jetzt durch.\n"
        "\n"
        "Mit freundlichen Grüßen\n"
        "Erika Mustermann\n"
        "Hausverwaltung Mustermann GmbH",
    ),
    (
        "outlook-de-underscore-line-and-cc",
        "Danke, erledigt.\r\n"
        "\r\n"
        "________________________________\r\n"
        "Von: Support <support@maildesk.example>\r\n"
        "Gesendet: Montag, 2. November 2026 10:15:03\r\n"
        "An: Erika Mustermann <erika@example.de>\r\n"
        "Cc: Max Muster <max@example.de>; Buchhaltung <bh@example.de>\r\n"
        "Betreff: AW: [#10042] Buchung\r\n"
        "\r\n"
        "Text\r\n",
        "Danke, erledigt.",
    ),
    (
        "outlook-de-urspruengliche-nachricht",
        "Hallo,\n"
        "\n"
        "der Fehler tritt weiterhin auf, Screenshot anbei.\n"
        "\n"
        "Gruß\n"
        "Erika\n"
        "\n"
        "-----Ursprüngliche Nachricht-----\n"
        "Von: Support [mailto:support@maildesk.example] \n"
        "Gesendet: Montag, 2. November 2026 10:15\n"
        "An: Erika Mustermann\n"
        "Betreff: AW: [#10042] Buchung schlägt fehl\n"
        "\n"
        "Guten Tag,\n"
        "bitte senden Sie uns einen Screenshot.\n",
        "Hallo,\n\nder Fehler tritt weiterhin auf, Screenshot anbei.\n\nGruß\nErika",
    ),
    (
        "outlook-de-log-lines-keep-their-indentation",
        "Hier das Protokoll:\n"
        "\n"
        "    ERROR 42 at Buchung.save()\n"
        "        caused by: Timeout\n"
        "\n"
        "Von: Support <support@maildesk.example>\n"
        "Gesendet: Montag, 2. November 2026 10:15\n"
        "An: Erika Mustermann\n"
        "Betreff: [#10042] Protokoll\n",
        "Hier das Protokoll:\n\n    ERROR 42 at Buchung.save()\n        caused by: Timeout",
    ),
    (
        "webde-gmx-sent-first",
        "Anbei die Unterlagen.\n"
        "\n"
        "Gesendet: Montag, 02. November 2026 um 10:15 Uhr\n"
        'Von: "Support" <support@maildesk.example>\n'
        "An: erika@web.de\n"
        "Betreff: [#10042] Unterlagen\n"
        "\n" + NOTICE,
        "Anbei die Unterlagen.",
    ),
    (
        "gmail-de-intro-on-two-lines",
        "Die Rechnung ist angekommen, danke!\n"
        "\n"
        "Am Mo., 2. Nov. 2026 um 10:15 Uhr schrieb Support <\n"
        "support@maildesk.example>:\n"
        "\n" + quoted(NOTICE) + "\n",
        "Die Rechnung ist angekommen, danke!",
    ),
    (
        "gmail-de-signature-above-intro",
        "Ja, das passt so.\n"
        "\n"
        "-- \n"
        "Erika Mustermann\n"
        "Tel. 0221 123456\n"
        "\n"
        "Am Mo., 2. Nov. 2026 um 10:15 Uhr schrieb Support <support@maildesk.example>:\n"
        "\n" + quoted(NOTICE),
        "Ja, das passt so.",
    ),
    (
        "apple-mail-iphone-de",
        "Passt so, danke.\n"
        "\n"
        "Von meinem iPhone gesendet\n"
        "\n"
        "> Am 02.11.2026 um 10:15 schrieb Support <support@maildesk.example>:\n"
        "> \n" + quoted(NOTICE),
        "Passt so, danke.",
    ),
    (
        "apple-mail-desktop-de",
        "Guten Morgen,\n"
        "\n"
        "der Drucker druckt wieder.\n"
        "\n"
        "Am 02.11.2026 um 10:15 schrieb Support <support@maildesk.example>:\n"
        "\n" + quoted(NOTICE),
        "Guten Morgen,\n\nder Drucker druckt wieder.",
    ),
    (
        "thunderbird-de-intro-without-address",
        "Hallo zusammen,\n"
        "\n"
        "anbei die gewünschte Datei.\n"
        "\n"
        "Am 02.11.26 um 10:15 schrieb Support-Team:\n" + quoted(NOTICE) + "\n",
        "Hallo zusammen,\n\nanbei die gewünschte Datei.",
    ),
    (
        "thunderbird-en",
        "Attached.\n\nOn 11/2/26 10:15 AM, Support Team wrote:\n" + quoted(NOTICE),
        "Attached.",
    ),
    (
        "gmail-en",
        "Thanks, that fixed it.\n"
        "\n"
        "On Mon, Nov 2, 2026 at 10:15 AM Support <support@maildesk.example> wrote:\n"
        "\n"
        "> ## Please reply above this line ##\n"
        ">\n"
        "> Please restart the service.\n",
        "Thanks, that fixed it.",
    ),
    (
        "gmail-en-intro-on-two-lines",
        "Thanks, that fixed it.\n"
        "\n"
        "On Mon, Nov 2, 2026 at 10:15 AM Support Team <\n"
        "support@maildesk.example> wrote:\n"
        "\n"
        "> Please restart the service.\n",
        "Thanks, that fixed it.",
    ),
    (
        "outlook-en-header-block",
        "It still fails after the update.\n"
        "\n"
        "Best regards,\n"
        "John\n"
        "\n"
        "From: Support <support@maildesk.example>\n"
        "Sent: Monday, November 2, 2026 10:15 AM\n"
        "To: John Doe <john@example.com>\n"
        "Subject: RE: [#10042] Crash\n"
        "\n"
        "Please update to 2.1.\n",
        "It still fails after the update.\n\nBest regards,\nJohn",
    ),
    (
        "outlook-en-original-message",
        "See attached log.\n"
        "\n"
        "-----Original Message-----\n"
        "From: Support\n"
        "Sent: Monday, November 2, 2026 10:15 AM\n"
        "To: John\n"
        "Subject: Crash\n"
        "\n"
        "Please send the log.\n",
        "See attached log.",
    ),
    (
        "outlook-mac-en-bold-headers-date-first",
        "Done.\n"
        "\n"
        "*Date:* Monday, 2 November 2026 at 10:15\n"
        "*From:* Support <support@maildesk.example>\n"
        "*To:* John Doe <john@example.com>\n"
        "*Subject:* [#10042] Crash\n",
        "Done.",
    ),
    (
        "maildesk-marker-de",
        "Ja, bitte schließen.\n\n" + NOTICE,
        "Ja, bitte schließen.",
    ),
    (
        "maildesk-marker-en",
        "Yes please close it.\n"
        "\n"
        "## Please reply above this line ##\n"
        "\n"
        "Ticket #10042 has been updated.\n",
        "Yes please close it.",
    ),
    (
        "trailing-quote-lines-without-intro",
        "Erledigt.\n\n> Bitte starten Sie den Dienst neu.\n",
        "Erledigt.",
    ),
    (
        "short-name-wrote-line-above-quote",
        "Erledigt.\n\nErika Mustermann schrieb:\n> Bitte starten Sie neu.\n> Danke\n",
        "Erledigt.",
    ),
    (
        "sig-dash-without-trailing-space",
        "Works now.\n\n--\nJohn Doe\nACME Corp\n",
        "Works now.",
    ),
    (
        "outlook-mobile-footer",
        "Geht wieder.\n"
        "\n"
        "Get Outlook for iOS<https://aka.ms/o0ukef>\n"
        "________________________________\n"
        "From: Support <support@maildesk.example>\n"
        "Sent: Monday, November 2, 2026 10:15:03 AM\n"
        "To: John Doe <john@example.com>\n"
        "Subject: [#10042] Crash\n",
        "Geht wieder.",
    ),
    (
        "webde-app-footer",
        "Bin ab Montag wieder da.\n\nGesendet mit der WEB.DE Mail App\n\n" + NOTICE,
        "Bin ab Montag wieder da.",
    ),
    (
        # Apple Mail HTML-only, converted without indentation: the address tells
        "html-converted-apple-mail-unindented",
        "Passt.\n"
        "\n"
        "Am 02.11.2026 um 10:15 schrieb Support <support@maildesk.example>:\n"
        "\n"
        "Guten Tag Frau Mustermann,\n"
        "wir haben Ihre Anfrage erhalten.",
        "Passt.",
    ),
    (
        "lotus-notes-de",
        "Erledigt.\n"
        "\n"
        "Erika Mustermann <erika@example.de> schrieb am 02.11.2026 10:15:10:\n"
        "\n"
        "> Bitte bestätigen Sie den Termin.",
        "Erledigt.",
    ),
    (
        "lotus-notes-en",
        "Confirmed.\n"
        "\n"
        "John Doe/ACME@ACME wrote on 11/02/2026 10:15:10 AM:\n"
        "\n"
        "> Please confirm the date.",
        "Confirmed.",
    ),
    (
        "quote-then-outlook-original",
        "Siehe unten.\n"
        "\n"
        "> Bitte um Rückmeldung.\n"
        "\n"
        "-----Ursprüngliche Nachricht-----\n"
        "Von: Support <support@maildesk.example>\n"
        "Gesendet: Montag, 2. November 2026 10:15\n"
        "An: Erika Mustermann\n"
        "Betreff: [#10042] Export\n"
        "\n"
        "Bitte um Rückmeldung.",
        "Siehe unten.",
    ),
    (
        # a Gmail HTML-only reply after html_to_text: the quote is indented
        "html-converted-gmail",
        "Danke!\n"
        "    Am Mo., 2. Nov. 2026 um 10:15 Uhr schrieb Support <support@maildesk.example>:\n"
        "    Hallo,\n"
        "    bitte testen.",
        "Danke!",
    ),
]

# Mails that must come back whole (stripped); (case, body).
WHOLE: list[tuple[str, str]] = [
    ("starts-with-a-quote", "> Hallo\n> Test"),
    (
        "pure-outlook-forward-wg",
        "-----Ursprüngliche Nachricht-----\n"
        "Von: Kunde <kunde@example.de>\n"
        "Gesendet: Montag, 2. November 2026 10:15\n"
        "An: Erika Mustermann\n"
        "Betreff: Fehler bei der Buchung\n"
        "\n"
        "Die Buchung schlägt fehl.",
    ),
    (
        "pure-outlook-forward-header-block",
        "Von: Kunde <kunde@example.de>\n"
        "Gesendet: Montag, 2. November 2026 10:15\n"
        "An: Erika Mustermann\n"
        "Betreff: Fehler bei der Buchung\n"
        "\n"
        "Die Buchung schlägt fehl.",
    ),
    (
        "gmail-forward-with-note",
        "Bitte prüfen, siehe unten.\n"
        "\n"
        "---------- Forwarded message ---------\n"
        "Von: Kunde <kunde@example.de>\n"
        "Date: Mo., 2. Nov. 2026 um 10:15 Uhr\n"
        "Subject: Fehler\n"
        "To: <erika@example.de>\n"
        "\n"
        "Die Buchung schlägt fehl.",
    ),
    (
        "apple-forward",
        "Zur Info.\n"
        "\n"
        "Anfang der weitergeleiteten E-Mail:\n"
        "\n"
        "Von: Kunde <kunde@example.de>\n"
        "Betreff: Fehler\n"
        "Datum: 2. November 2026 um 10:15:00 MEZ\n"
        "An: erika@example.de\n"
        "\n"
        "Die Buchung schlägt fehl.",
    ),
    (
        "no-quote-at-all",
        "Hallo,\n"
        "\n"
        "ich habe ein Problem mit dem Login.\n"
        "- Browser: Firefox\n"
        "- Version: 5.2\n"
        "\n"
        "Grüße an das Team, und danke für die schnelle Hilfe letzte Woche!\n"
        "Erika",
    ),
    (
        "schrieb-mid-sentence",
        "Am Montag schrieb mir Herr Meier, dass der Export wieder geht – bei mir nicht:\n"
        "die Buchung bricht weiterhin ab.\n"
        "\n"
        "Viele Grüße\n"
        "Max",
    ),
    (
        "schrieb-with-a-date-but-no-quote-below",
        "Hallo,\n"
        "\n"
        "am 03.11. um 9:30 schrieb mir der Kollege Folgendes:\n"
        "Der Export bricht bei 50 % ab.",
    ),
    (
        "wrote-mid-sentence",
        "On Monday my colleague wrote: the export still fails.\n"
        "On Tuesday, 2 Nov, John wrote:\n"
        "it works for him.",
    ),
    (
        "field-list-that-looks-like-headers",
        "Bitte buchen Sie:\n"
        "\n"
        "Kunde: 4711\n"
        "Datum: 03.11.2026\n"
        "Betreff: Miete November\n"
        "An: Buchhaltung\n"
        "\n"
        "Danke",
    ),
    (
        "schrieb-with-an-address-but-no-date",
        "Hallo,\n"
        "\n"
        "am Montag schrieb mir service@bank.example Folgendes:\n"
        "Ihr Konto wird gesperrt.\n"
        "\n"
        "Ist das echt?",
    ),
    (
        "long-sentence-with-date-and-address-ending-in-colon",
        "Hallo,\n"
        "\n"
        "Am 02.11.2026 um 10:15 schrieb ich an buchhaltung@example.de, dass die Buchung "
        "für November nicht durchgeht, weil das System beim Speichern einen Fehler meldet, "
        "und seitdem habe ich es mehrfach versucht, auch von einem anderen Rechner und mit "
        "einem anderen Benutzer, leider immer mit demselben Ergebnis, nämlich dieser Meldung:\n"
        "    Fehler 42: Zeitüberschreitung",
    ),
    (
        "form-with-blank-line-between-fields",
        "Urlaubsantrag\n"
        "Von: 03.11.2026\n"
        "Bis: 07.11.2026\n"
        "\n"
        "Datum: 01.11.2026\n"
        "An: Personalabteilung\n"
        "\n"
        "Danke",
    ),
    (
        "form-with-from-and-date-fields",
        "Bitte eintragen:\n"
        "Von: 03.11.2026\n"
        "Bis: 07.11.2026\n"
        "Datum: 01.11.2026\n"
        "Unterschrift: E. Mustermann",
    ),
    ("last-line-that-only-looks-like-a-footer", "Ist raus.\n\nGesendet mit DHL, Nummer 0034 0430"),
    ("signature-only", "-- \nErika Mustermann\nTel. 0221 123456"),
    ("mobile-footer-only", "Sent from my iPhone"),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CUT], ids=[c[0] for c in CUT])
def test_history_and_signature_are_cut(body: str, expected: str) -> None:
    assert display_text(body) == expected


#: Bottom-posted and interleaved replies (issue 19): the customer's own lines
#: stay, each quote and the intro above it go (the full text is kept apart).
ANSWERED_BELOW = [
    (
        "interleaved-under-intro",
        "Hallo,\n"
        "\n"
        "Am 02.11.2026 um 10:15 schrieb Support <support@maildesk.example>:\n"
        "> Welche Version nutzen Sie?\n"
        "Version 5.2\n"
        "> Tritt der Fehler bei allen Nutzern auf?\n"
        "Nein, nur bei mir.\n"
        ">\n"
        "> Ihr Support-Team",
        "Hallo,\n"
        "\n"
        "Version 5.2\n"
        "Nein, nur bei mir.",
    ),
    (
        "interleaved-without-intro",
        "Hallo,\n"
        "\n"
        "> Welche Version nutzen Sie?\n"
        "\n"
        "Version 5.2\n"
        "\n"
        "> Tritt der Fehler bei allen Nutzern auf?\n"
        "\n"
        "Nein, nur bei mir.",
        "Hallo,\n"
        "\n"
        "Version 5.2\n"
        "\n"
        "Nein, nur bei mir.",
    ),
    (
        "interleaved-below-quoted-marker",
        "> ## Bitte oberhalb dieser Zeile antworten ##\n"
        "> Welche Version nutzen Sie?\n"
        "Version 5.2",
        "Version 5.2",
    ),
    (
        "interleaved-starting-with-intro",
        "On Mon, Nov 2, 2026 at 10:15 AM Support <support@maildesk.example> wrote:\n"
        "> Which version?\n"
        "5.2\n"
        "> Which browser?\n"
        "Firefox",
        "5.2\n"
        "Firefox",
    ),
    (
        "interleaved-under-wrapped-intro",
        "Hallo,\n"
        "\n"
        "Am Mo., 2. Nov. 2026 um 10:15 Uhr schrieb Support <\n"
        "support@maildesk.example>:\n"
        "\n"
        "> Welche Version nutzen Sie?\n"
        "\n"
        "5.2\n"
        "\n"
        "> Welcher Browser?\n"
        "\n"
        "Firefox",
        "Hallo,\n"
        "\n"
        "5.2\n"
        "\n"
        "Firefox",
    ),
    (
        "bottom-posted",
        "> Welche Version nutzen Sie?\n"
        "\n"
        "Version 5.2, Windows 11.",
        "Version 5.2, Windows 11.",
    ),
    (
        "answer-below-an-older-quote",
        "Danke.\n"
        "\n"
        "> Bitte um Rückmeldung.\n"
        "\n"
        "Am 01.11.2026 um 09:00 schrieb Erika <erika@example.de>:\n"
        "> Geht der Export wieder?\n"
        "Nein, der Export geht noch nicht.",
        "Danke.\n"
        "\n"
        "Nein, der Export geht noch nicht.",
    ),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in ANSWERED_BELOW],
                         ids=[c[0] for c in ANSWERED_BELOW])
def test_answers_below_or_between_quotes_are_kept_and_the_quotes_dropped(
        body: str, expected: str) -> None:
    assert display_text(body) == expected


@pytest.mark.parametrize("body", [c[1] for c in WHOLE], ids=[c[0] for c in WHOLE])
def test_real_answers_are_never_cut(body: str) -> None:
    assert display_text(body) == body.strip()


def test_text_without_quote_comes_back_unchanged() -> None:
    body = "Hallo,\n\n  eingerückt bleibt eingerückt.  \n\nDanke\nErika"
    assert display_text(body) == body


def test_surrounding_whitespace_and_crlf_are_normalised() -> None:
    assert display_text("\r\n  Hallo\r\nWelt  \r\n\r\n") == "Hallo\nWelt"


@pytest.mark.parametrize("body", ["", "   ", "\n\n", "\r\n"])
def test_empty_text_gives_empty(body: str) -> None:
    assert display_text(body) == ""


@pytest.mark.parametrize("body", [None, b"bytes", 42])
def test_not_a_string_gives_empty(body: object) -> None:
    assert display_text(body) == ""  # type: ignore[arg-type]


def test_five_kilobytes_take_well_under_a_few_milliseconds() -> None:
    new = "Dies ist eine Zeile mit neuem Text, etwas länger als eine übliche Zeile.\n" * 35
    history = quoted("Eine Zeile der alten Unterhaltung, zitiert mit spitzer Klammer.\n" * 40)
    for body in (new * 2, new + "\nAm 02.11.2026 um 10:15 schrieb S <s@x.de>:\n" + history):
        assert len(body) > 5000
        per_mail = timeit.timeit(lambda b=body: display_text(b), number=50) / 50
        assert per_mail < 0.005, f"{per_mail * 1000:.2f} ms per 5 KB mail"


@pytest.mark.parametrize(
    "body",
    [
        "Am " + "x " * 50_000 + "schrieb",  # one long line: no backtracking blow-up
        "> q\nanswer\n" * 5_000,  # long interleaved mail
        "Am 02.11.2026 um 10:15 schrieb a@b.c:\n> q\n" * 5_000,
        "Von: a\n" * 20_000,
    ],
    ids=["long-line", "interleaved", "many-intros", "many-header-lines"],
)
def test_hostile_input_stays_fast(body: str) -> None:
    assert timeit.timeit(lambda: display_text(body), number=1) < 1.0


LINE_PARTS = [
    "Hallo,", "> zitiert", ">", "", "-- ", "--", "Am 02.11.2026 um 10:15 schrieb E <e@x.de>:",
    "On Mon, Nov 2, 2026 at 10:15 AM E <e@x.de> wrote:", "Von: E <e@x.de>",
    "Gesendet: Montag, 2. November 2026", "An: S", "Betreff: X", "Sent from my iPhone",
    "## Bitte oberhalb dieser Zeile antworten ##", "-----Original Message-----", "_" * 32,
    "    eingerückt", "Antwort", "Erika schrieb:", "\r",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(LINE_PARTS), st.text(max_size=30)), max_size=25).map(
        "\n".join
    )
)
def test_only_ever_drops_lines_and_never_returns_nothing(body: str) -> None:
    """Every line shown is a line of the mail, in the mail's order (a cut at
    the end, or the quotes of a reply below them left out)."""
    result = display_text(body)
    normalised = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    assert bool(result) == bool(normalised)
    source = normalised.split("\n")
    at = 0
    for line in result.split("\n"):
        while at < len(source) and source[at].strip() != line.strip():
            at += 1
        assert at < len(source), (line, normalised)
        at += 1
