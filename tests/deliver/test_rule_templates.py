"""Notification templates of the automatic rules (SPEC §3, §6; seeds 000/001):
``reminder_1`` and ``reminder_2`` for tickets waiting for the customer's
answer, ``auto_close`` for solved tickets, ``release_notice`` for tickets
waiting for a release. Every kind in German and English, with the same
frame as the other customer mails (reply marker on top, signature, signed
reference as the last line), its extra context keys, escaping, and strict
context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import UndefinedError

from maildesk.deliver.render import BUILTIN_DIR, PARTS, Renderer, labels
from maildesk.mail import tokens
from maildesk.mail.htmlsafe import html_to_text
from maildesk.mail.quoting import display_text

RULE_KINDS = ["reminder_1", "reminder_2", "auto_close", "release_notice"]
LANGUAGES = ["de", "en"]
MARKER = {"de": "## Bitte oberhalb dieser Zeile antworten ##",
          "en": "## Please reply above this line ##"}  # fmt: skip
GREETING = {"de": "Guten Tag", "en": "Hello"}
SECRET = b"rule-templates-secret"
REFERENCE = tokens.body_reference(SECRET, 10001)
UMLAUTS = "Größe"
EVIL = "<script>alert('x')</script>"
SIGNATURE = "Das Team von Beispiel"
ASKED_AT = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)  # 10:15 in Europe/Berlin (CET)

#: What each mail must say, per language (compared with whitespace folded,
#: so line wrapping in the text part does not matter).
KEY_SENTENCES: dict[str, dict[str, list[str]]] = {
    "de": {
        "reminder_1": [
            "Wartet auf Ihre Antwort",
            "Wir haben Ihnen am 02.11.2026, 10:15 Uhr geschrieben",
            "Bitte antworten Sie einfach auf diese E-Mail",
            "Erhalten wir innerhalb von 4 Werktagen keine Antwort, schließen wir das Ticket.",
            "wir eröffnen automatisch ein neues Ticket und verknüpfen es mit diesem",
        ],
        "reminder_2": [
            "zweite und letzte Erinnerung",
            "haben wir das Ticket jetzt geschlossen",
            "Ist Ihr Anliegen noch nicht erledigt, antworten Sie einfach auf diese E-Mail.",
            "Wir eröffnen dann automatisch ein neues Ticket und verknüpfen es mit diesem",
        ],
        "auto_close": [
            "wurde 21 Tage nach der Lösung automatisch geschlossen",
            "Vielen Dank, dass Sie sich an uns gewandt haben.",
            "Wir eröffnen dann automatisch ein neues Ticket und verknüpfen es mit diesem",
        ],
        "release_notice": [
            "Die Lösung ist in Version 2026.3 enthalten, die jetzt veröffentlicht wurde.",
            "Hinweis zum Release",
            "Druckvorschau repariert",
            "Ihr Ticket hat jetzt den Status „Gelöst“.",
            "antworten Sie einfach auf diese E-Mail",
        ],
    },
    "en": {
        "reminder_1": [
            "Waiting for your reply",
            "We wrote to you on 2 Nov 2026, 10:15 (CET)",
            "Simply reply to this email",
            "If we do not hear from you within 4 business days, we will close the ticket.",
            "we will automatically open a new ticket linked to this one",
        ],
        "reminder_2": [
            "second and final reminder",
            "we have now closed the ticket",
            "If your request is still open, simply reply to this email.",
            "We will then automatically open a new ticket and link it to this one",
        ],
        "auto_close": [
            "was closed automatically 21 days after it was solved",
            "Thank you for contacting us.",
            "We will then automatically open a new ticket and link it to this one",
        ],
        "release_notice": [
            "The solution is included in version 2026.3, which has now been released.",
            "Release note",
            "Druckvorschau repariert",
            "Your ticket now has the status",
            "Solved",
            "simply reply to this email",
        ],
    },
}

#: The extra keys of each kind (besides ticket, customer, agent, …).
EXTRA_KEYS = {
    "reminder_1": ["days_left", "asked_at"],
    "reminder_2": [],
    "auto_close": ["days"],
    "release_notice": ["version", "note", "new_status_label"],
}


def context(language: str = "de", **changes: Any) -> dict[str, Any]:
    """A complete context for every rule kind, as the worker would build it."""
    values: dict[str, Any] = {
        "ticket": {
            "number": 10001,
            "subject": f"Störung am Drucker {UMLAUTS} {EVIL}",
            "status": "pending",
            "request_type": "incident",
            "priority": "normal",
            "tag": "[#10001]",
            "follow_up_of": None,
        },
        "customer": {"name": f"Jürgen {UMLAUTS} {EVIL}", "email": "juergen@example.de"},
        "agent": {"name": "Max Müller", "email": "max@support.example"},
        "reference_line": REFERENCE,
        "signature_name": SIGNATURE,
        "brand": "Beispiel Support",
        # reminder_1 (not the configured defaults 5 and 14, so that a number
        # written into a template instead of the key shows)
        "days_left": 4,
        "asked_at": ASKED_AT,
        # auto_close
        "days": 21,
        # release_notice
        "version": "2026.3",
        "note": f"Druckvorschau repariert {EVIL}\nzweite Zeile",
        "new_status_label": labels(language)["status"]["solved"],
    }  # fmt: skip
    values.update(changes)
    return values


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def folded(text: str) -> str:
    return " ".join(text.split())


def visible(html: str) -> str:
    """The readable text of an HTML part, whitespace folded."""
    return folded(html_to_text(html))


def test_rule_kinds_are_complete_in_both_languages(renderer: Renderer) -> None:
    for language in LANGUAGES:
        for kind in RULE_KINDS:
            for part in PARTS:
                assert (BUILTIN_DIR / language / f"{kind}.{part}.j2").is_file(), (
                    f"{language}/{kind}.{part}.j2 is missing")  # fmt: skip
    assert set(RULE_KINDS) <= set(renderer.kinds())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", RULE_KINDS)
def test_every_rule_kind_renders_in_the_common_frame(renderer: Renderer, kind: str,
                                                     language: str) -> None:  # fmt: skip
    out = renderer.render(kind, language, context(language))

    # Subject: one line, the ticket tag and the ticket's own subject (threading).
    assert "\n" not in out.subject and "[#10001]" in out.subject
    assert out.subject.startswith("[#10001] Störung am Drucker")
    # The reply marker is the first line of the text, above the greeting,
    # and on top of the HTML content as in the other kinds.
    lines = out.text.splitlines()
    assert lines[0] == MARKER[language]
    assert lines[2].startswith(GREETING[language])
    assert MARKER[language] in out.html
    assert out.html.index(MARKER[language]) < out.html.index(GREETING[language] + " Jürgen")
    # The signed reference is the last non-empty line of the text part and
    # the last visible thing in the HTML; the signature comes before it.
    assert [line for line in lines if line.strip()][-1] == REFERENCE
    assert out.text.endswith(f"\n{REFERENCE}\n")
    assert visible(out.html).endswith(REFERENCE)
    assert out.text.index(SIGNATURE) < out.text.index(REFERENCE)
    assert out.html.index(SIGNATURE) < out.html.index(REFERENCE)
    closing = "Mit freundlichen Grüßen" if language == "de" else "Kind regards,"
    assert out.text.index(closing) < out.text.index(SIGNATURE)
    # Umlauts stay characters; HTML is escaped and self-contained.
    for part in (out.text, out.html):
        assert UMLAUTS in part
        assert "Ã" not in part and "&#" not in part.replace("&#39;", "")
    assert "<script" not in out.html.lower() and "&lt;script&gt;" in out.html
    assert f'<html lang="{language}">' in out.html
    for forbidden in ("<img", "src=", "<link", "<style", "url(", "@import"):
        assert forbidden not in out.html.lower()
    assert out.text.endswith("\n") and not out.text.endswith("\n\n")
    # No template comment leaks into the mail.
    for part in (out.subject, out.text, out.html):
        assert "Keys:" not in part and "{#" not in part


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", RULE_KINDS)
def test_key_sentences_in_both_parts(renderer: Renderer, kind: str, language: str) -> None:
    out = renderer.render(kind, language, context(language))
    text, html = folded(out.text), visible(out.html)
    for sentence in KEY_SENTENCES[language][kind]:
        assert sentence in text, f"text part lacks {sentence!r}"
        assert sentence.replace("„", "").replace("“", "") in html.replace("„", "").replace(
            "“", ""), f"HTML part lacks {sentence!r}"  # fmt: skip
    other = "en" if language == "de" else "de"
    for sentence in KEY_SENTENCES[other][kind]:
        if sentence in ("Druckvorschau repariert",):
            continue
        assert sentence not in text and sentence not in html, f"{other} text in {language} mail"


@pytest.mark.parametrize("language", LANGUAGES)
def test_reminder_1_without_date_and_with_one_day_left(renderer: Renderer, language: str) -> None:
    out = renderer.render("reminder_1", language, context(language, asked_at=None, days_left=1))
    text, html = folded(out.text), visible(out.html)
    for part in (text, html):
        assert "None" not in part
        assert "2026" not in part.replace(REFERENCE, "")
    if language == "de":
        assert "Wir benötigen Ihre Antwort" in text and "Wir benötigen Ihre Antwort" in html
        assert "innerhalb von einem Werktag keine Antwort" in text
        assert "innerhalb von einem Werktag keine Antwort" in html
        assert "Werktagen" not in text + html
    else:
        assert "We need your reply" in text and "We need your reply" in html
        assert "within one business day, we will close" in text
        assert "within one business day, we will close" in html
        assert "business days" not in text + html


def test_reminder_1_dates_follow_the_time_zone() -> None:
    out = Renderer(timezone="UTC").render("reminder_1", "de", context())
    assert "am 02.11.2026, 09:15 Uhr" in folded(out.text)
    summer = Renderer().render("reminder_1", "en",
                               context("en", asked_at=datetime(2026, 7, 2, 9, 15)))  # fmt: skip
    assert "on 2 Jul 2026, 11:15 (CEST)" in folded(summer.text)


@pytest.mark.parametrize(("language", "expected"), [
    ("de", "wurde einen Tag nach der Lösung automatisch geschlossen"),
    ("en", "was closed automatically one day after it was solved"),
])  # fmt: skip
def test_auto_close_one_day(renderer: Renderer, language: str, expected: str) -> None:
    out = renderer.render("auto_close", language, context(language, days=1))
    assert expected in folded(out.text) and expected in visible(out.html)
    assert "1 Tage" not in out.text and "1 days" not in out.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_release_notice_note_is_optional_and_escaped(renderer: Renderer, language: str) -> None:
    with_note = renderer.render("release_notice", language, context(language))
    # Plain text keeps the note as written; HTML escapes it and keeps its lines.
    assert f"Druckvorschau repariert {EVIL}\nzweite Zeile" in with_note.text
    assert ("Druckvorschau repariert &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;<br>\n"
            "zweite Zeile") in with_note.html  # fmt: skip
    assert "<script" not in with_note.html.lower()
    # The note stands between the version and the status sentence.
    text = folded(with_note.text)
    assert text.index("2026.3") < text.index("Druckvorschau") < text.index(
        "Gelöst" if language == "de" else "Solved")  # fmt: skip

    plain = renderer.render("release_notice", language, context(language, note=None))
    heading = "Hinweis zum Release" if language == "de" else "Release note"
    for part in (plain.text, plain.html):
        assert heading not in part and "None" not in part and "Druckvorschau" not in part
        assert "2026.3" in part
    empty = renderer.render("release_notice", language, context(language, note=""))
    assert heading not in empty.text and heading not in empty.html


@pytest.mark.parametrize(("language", "expected"), [
    ("de", "Ihr Ticket hat jetzt den Status „Offen“."),
    ("en", "Your ticket now has the status"),
])  # fmt: skip
def test_release_notice_shows_the_status_it_is_given(renderer: Renderer, language: str,
                                                     expected: str) -> None:  # fmt: skip
    label = labels(language)["status"]["open"]
    out = renderer.render("release_notice", language, context(language, new_status_label=label))
    for part in (folded(out.text), visible(out.html)):
        assert expected in part and label in part
        assert labels(language)["status"]["solved"] not in part


def test_release_notice_without_version_raises(renderer: Renderer) -> None:
    ctx = {k: v for k, v in context().items() if k != "version"}
    for language in LANGUAGES:
        with pytest.raises(UndefinedError, match="version"):
            renderer.render("release_notice", language, ctx)


def only_part(tmp_path: Path, kind: str, part: str) -> Renderer:
    """A renderer whose other two parts of ``kind`` are trivial overrides, so
    that only the built-in ``part`` is rendered from the real template."""
    stubs = {"subject": "{{ ticket.tag }}", "txt": "{{ reference_line }}", "html": "<p></p>"}
    for language in LANGUAGES:
        (tmp_path / language).mkdir(exist_ok=True)
        for other, body in stubs.items():
            if other != part:
                (tmp_path / language / f"{kind}.{other}.j2").write_text(body, encoding="utf-8")
    return Renderer(override_dir=tmp_path)


@pytest.mark.parametrize("part", ["txt", "html"])
@pytest.mark.parametrize(("kind", "key"), [
    (kind, key) for kind, keys in EXTRA_KEYS.items() for key in keys
])  # fmt: skip
def test_a_missing_extra_key_raises_in_each_part(tmp_path: Path, kind: str, key: str,
                                                 part: str) -> None:  # fmt: skip
    ops = only_part(tmp_path, kind, part)
    for language in LANGUAGES:
        assert ops.render(kind, language, context(language))  # complete: renders
        ctx = {k: v for k, v in context(language).items() if k != key}
        with pytest.raises(UndefinedError, match=key):
            ops.render(kind, language, ctx)


@pytest.mark.parametrize("kind", RULE_KINDS)
def test_a_missing_standard_key_raises(renderer: Renderer, kind: str) -> None:
    for key in ("reference_line", "signature_name", "customer", "ticket"):
        ctx = {k: v for k, v in context().items() if k != key}
        with pytest.raises(UndefinedError, match=key):
            renderer.render(kind, "de", ctx)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", RULE_KINDS)
def test_a_reply_on_top_is_cut_at_the_marker(renderer: Renderer, kind: str,
                                             language: str) -> None:  # fmt: skip
    out = renderer.render(kind, language, context(language))
    answer = "Das Problem besteht weiterhin."
    assert display_text(f"{answer}\n\n{out.text}") == answer
    assert display_text(f"{answer}\n\n{html_to_text(out.html)}") == answer


@pytest.mark.parametrize("kind", RULE_KINDS)
def test_the_body_reference_is_found_again_in_both_parts(renderer: Renderer, kind: str) -> None:
    for language in LANGUAGES:
        out = renderer.render(kind, language, context(language))
        assert tokens.tickets_of_body(SECRET, out.text) == [10001]
        assert tokens.tickets_of_body(SECRET, html_to_text(out.html)) == [10001]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", RULE_KINDS)
def test_text_lines_fit_78_columns(renderer: Renderer, kind: str, language: str) -> None:
    short = context(
        language,
        ticket={**context()["ticket"], "subject": "Drucker"},
        customer={"name": "Erika Muster", "email": "e@example.de"},
        note="Druckvorschau repariert.",
        version="2026.3.1",
    )
    long_lines = [line for line in renderer.render(kind, language, short).text.splitlines()
                  if len(line) > 78]  # fmt: skip
    assert long_lines == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", RULE_KINDS)
def test_a_customer_without_name_gets_a_plain_greeting(renderer: Renderer, kind: str,
                                                       language: str) -> None:  # fmt: skip
    nameless = {"name": "", "email": "x@example.de"}
    out = renderer.render(kind, language, context(language, customer=nameless))
    assert out.text.splitlines()[2] == f"{GREETING[language]},"
    assert f"{GREETING[language]},</p>" in out.html
