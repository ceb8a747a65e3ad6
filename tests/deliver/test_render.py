"""Notification templates: every kind in German and English, the language
fallback chain, ops overrides, strict context, escaping, and the two lines
maildesk relies on when the mail comes back (reply marker, body reference)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import UndefinedError

from maildesk import config
from maildesk.deliver.render import BUILTIN_DIR, Renderer, UnknownTemplate, labels
from maildesk.mail import tokens
from maildesk.mail.htmlsafe import html_to_text
from maildesk.mail.quoting import display_text
from maildesk.tickets import lifecycle

KINDS = [
    "acknowledgement", "agent_notice_new", "agent_notice_reply", "agent_notice_solved",
    "agent_notice_unverified",
    "agent_reply", "closed", "command_result", "followup_created", "registration", "reopened",
    "solution", "solved_by_customer",
]  # fmt: skip
CUSTOMER_KINDS = ["acknowledgement", "agent_reply", "closed", "followup_created", "registration",
                  "reopened", "solution", "solved_by_customer"]  # fmt: skip
#: 2nd-level support (tickets/second_level.py).
SECOND_LEVEL_KINDS = ["agent_notice_second_level", "end_customer_closed", "second_level_solved"]
KINDS += SECOND_LEVEL_KINDS
CUSTOMER_KINDS += ["end_customer_closed", "second_level_solved"]
#: The on-hold ("in Entwicklung") notice to the customer.
KINDS += ["on_hold_development"]
CUSTOMER_KINDS += ["on_hold_development"]
#: Kinds whose templates need a context of their own (category, SLA limit,
#: the third person's request); rendered by test_own_context_kinds_render.
OWN_CONTEXT_KINDS = ["agent_notice_category", "agent_notice_sla_red", "agent_notice_sla_yellow",
                     "agent_notice_statement", "third_party_ask", "third_party_forward"]
LANGUAGES = ["de", "en"]
MARKER = {"de": "## Bitte oberhalb dieser Zeile antworten ##",
          "en": "## Please reply above this line ##"}  # fmt: skip
SECRET = b"test-secret"
REFERENCE = tokens.body_reference(SECRET, 10001)
UMLAUTS = "Größe"
EVIL = "<script>alert('x')</script>"


def context(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ticket": {
            "number": 10001,
            "subject": f"Störung am Drucker {UMLAUTS} {EVIL}",
            "status": "pending",
            "request_type": "incident",
            "priority": "normal",
            "tag": "[#10001]",
            "follow_up_of": 9999,
        },
        "customer": {"name": f"Jürgen {UMLAUTS} {EVIL}", "email": "juergen@example.de"},
        "agent": {"name": "Max Müller", "email": "max@support.example"},
        "text": f"Guten Tag Herr {UMLAUTS},\n\nbitte starten Sie den Drucker neu.\n{EVIL}",
        "thread": [
            {"author": f"Jürgen {UMLAUTS}", "date": datetime(2026, 11, 2, 9, 15, tzinfo=UTC),
             "text": "Mein Drucker druckt nicht."},
            {"author": "Max Müller", "date": datetime(2026, 11, 1, 8, 0),
             "text": "Erste Antwort"},
        ],
        "reference_line": REFERENCE,
        "signature_name": "Ihr Support-Team",
        "old_ticket": {"number": 9999, "subject": f"Alte Störung {EVIL}"},
        "commands": [
            {"line": "#status pending", "ok": True, "message": "status: open -> pending"},
            {"line": "#stauts solved", "ok": False, "message": "unknown command 'stauts'"},
        ],
        "csat_url": "https://support.example/csat/abc?x=1&y=2",
        "solve_url": "https://support.example/solve/abc?x=1&y=2",
        "confirm_url": "https://support.example/confirm/abc?x=1&y=2",
        "confirm_days": 14,
        "brand": "Beispiel Support",
        "held_id": 42, "held_subject": f"AW: Drucker {EVIL}",
        "held_reason": "From names the agent max@support.example, but …",
    }  # fmt: skip
    values.update(changes)
    return values


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def visible_after(html: str, needle: str) -> str:
    """The text content of the HTML after the first occurrence of needle."""
    rest = html[html.index(needle) + len(needle) :]
    return re.sub(r"<[^>]+>", "", rest).strip()


#: Kinds of the time rules; rendered in tests/deliver/test_rule_templates.py with
#: their own context keys.
RULE_KINDS = ["auto_close", "release_notice", "reminder_1", "reminder_2"]
#: Kinds without a ticket; rendered in tests/actions/test_announce.py and
#: tests/web/test_portal_login.py.
TICKETLESS_KINDS = ["announcement", "portal_login"]


def test_kinds_lists_every_notification(renderer: Renderer) -> None:
    assert renderer.kinds() == sorted(KINDS + RULE_KINDS + TICKETLESS_KINDS
                                      + OWN_CONTEXT_KINDS)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders(renderer: Renderer, kind: str, language: str) -> None:
    out = renderer.render(kind, language, context())

    # Subject: one line with the tag.
    assert out.subject and "\n" not in out.subject and "[#10001]" in out.subject
    # The reply marker is the first line, exactly as mail/quoting.py knows it.
    assert out.text.splitlines()[0] == MARKER[language]
    assert MARKER[language] in out.html
    # The signed reference is the very last line of both parts.
    assert out.text.rstrip("\n").splitlines()[-1] == REFERENCE
    assert visible_after(out.html, REFERENCE) == ""
    # Umlauts survive as characters, not entities or mojibake.
    for part in (out.text, out.html):
        assert UMLAUTS in part
        assert "Ã" not in part and "&#" not in part.replace("&#39;", "")
    # HTML: escaped, self-contained, accessible.
    assert "<script" not in out.html.lower()
    assert "&lt;script&gt;" in out.html
    assert f'<html lang="{language}">' in out.html
    for forbidden in ("<img", "src=", "<link", "<style", "url(", "@import"):
        assert forbidden not in out.html.lower()
    assert out.text.endswith("\n") and not out.text.endswith("\n\n")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_text_lines_fit_78_columns(renderer: Renderer, kind: str, language: str) -> None:
    short = context(
        ticket={**context()["ticket"], "subject": "Drucker"},
        customer={"name": "Erika Muster", "email": "e@example.de"},
        text="Kurz.",
        thread=[{"author": "Erika", "date": datetime(2026, 1, 1, tzinfo=UTC), "text": "Hallo"}],
        commands=[{"line": "#status pending", "ok": True, "message": "ok"}],
        csat_url="https://x.example/c",
    )
    long_lines = [line for line in renderer.render(kind, language, short).text.splitlines()
                  if len(line) > 78]  # fmt: skip
    assert long_lines == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_reply_on_top_is_cut_at_the_marker(renderer: Renderer, kind: str,
                                             language: str) -> None:  # fmt: skip
    out = renderer.render(kind, language, context())
    answer = "Danke, das hat geholfen!"
    assert display_text(f"{answer}\n\n{out.text}") == answer
    assert display_text(f"{answer}\n\n{html_to_text(out.html)}") == answer


@pytest.mark.parametrize("kind", KINDS)
def test_the_body_reference_is_found_again_in_both_parts(renderer: Renderer, kind: str) -> None:
    out = renderer.render(kind, "de", context())
    assert tokens.tickets_of_body(SECRET, out.text) == [10001]
    assert tokens.tickets_of_body(SECRET, html_to_text(out.html)) == [10001]


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_customer_mails_are_signed(renderer: Renderer, kind: str) -> None:
    out = renderer.render(kind, "de", context(signature_name="Das Team von Beispiel"))
    assert "Das Team von Beispiel" in out.text and "Das Team von Beispiel" in out.html
    assert out.text.index("Das Team von Beispiel") < out.text.index(REFERENCE)


def test_plain_text_is_not_escaped_and_html_keeps_line_breaks(renderer: Renderer) -> None:
    out = renderer.render("agent_reply", "de", context(text="a < b & c\nzweite Zeile"))
    assert "a < b & c\nzweite Zeile" in out.text
    assert "a &lt; b &amp; c<br>\nzweite Zeile" in out.html


def test_agent_reply_puts_text_first_and_thread_below(renderer: Renderer) -> None:
    out = renderer.render("agent_reply", "de", context(text="Die Antwort."))
    lines = out.text.splitlines()
    assert lines[:3] == [MARKER["de"], "", "Die Antwort."]
    # Newest first, as given; dates in local time (Europe/Berlin), naive = UTC.
    assert out.text.index("Mein Drucker druckt nicht.") < out.text.index("Erste Antwort")
    assert "02.11.2026, 10:15 Uhr" in out.text and "01.11.2026, 09:00 Uhr" in out.text
    assert out.text.index("Erste Antwort") < out.text.index(REFERENCE)
    assert "Max Müller" in out.text and "Wartet auf Ihre Antwort" in out.text


def test_agent_reply_without_thread_has_no_history_block(renderer: Renderer) -> None:
    out = renderer.render("agent_reply", "de", context(thread=[]))
    assert "Bisheriger Verlauf" not in out.text and "Bisheriger Verlauf" not in out.html


def test_dates_follow_language_and_time_zone() -> None:
    when = datetime(2026, 7, 2, 9, 15)  # naive: UTC
    ctx = context(thread=[{"author": "A", "date": when, "text": "x"}])
    assert "02.07.2026, 11:15 Uhr" in Renderer().render("agent_reply", "de", ctx).text
    assert "2 Jul 2026, 11:15 (CEST)" in Renderer().render("agent_reply", "en", ctx).text
    assert "02.07.2026, 09:15 Uhr" in Renderer(timezone="UTC").render(
        "agent_reply", "de", ctx).text  # fmt: skip
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Renderer(timezone="Mars/Olympus")


def test_solution_has_the_survey_under_the_signature_only_with_a_url(renderer: Renderer) -> None:
    url = "https://support.example/csat/abc?x=1&y=2"
    out = renderer.render("solution", "de", context(csat_url=url))
    assert out.text.index("Max Müller") < out.text.index(url) < out.text.index(REFERENCE)
    assert 'href="https://support.example/csat/abc?x=1&amp;y=2"' in out.html
    assert out.html.index("Ihr Support-Team") < out.html.index("csat/abc")
    for ctx in (context(csat_url=None), {k: v for k, v in context().items() if k != "csat_url"}):
        plain = renderer.render("solution", "de", ctx)
        assert "csat" not in plain.text and "csat" not in plain.html
        assert "zufrieden" not in plain.text


def test_command_result_says_whether_anything_was_applied(renderer: Renderer) -> None:
    failed = renderer.render("command_result", "de", context())
    assert "nichts übernommen" in failed.text and "[FEHLER]  #stauts solved" in failed.text
    assert "unknown command 'stauts'" in failed.text
    applied = renderer.render("command_result", "en", context(commands=[
        {"line": "#status pending", "ok": True, "message": "status: open -> pending"}]))
    assert "were applied" in applied.text and "nothing was applied" not in applied.text
    assert applied.subject != renderer.render("command_result", "en", context()).subject


def test_followup_names_old_and_new_ticket(renderer: Renderer) -> None:
    out = renderer.render("followup_created", "de", context())
    assert "#9999" in out.text and "Alte Störung" in out.text and "#10001" in out.text


def test_labels_come_from_the_language_used(renderer: Renderer) -> None:
    ticket = {**context()["ticket"], "status_label": "wrong", "status": "on_hold"}
    de = renderer.render("acknowledgement", "de", context(ticket=ticket))
    en = renderer.render("acknowledgement", "en", context(ticket=ticket))
    assert "Offen (in Entwicklung)" in de.text and "Fehler/Störung" in de.text
    assert "Open (in development)" in en.text and "Incident" in en.text
    assert "wrong" not in de.text + en.text


def test_labels_cover_every_status_type_and_priority() -> None:
    for language in ("de", "en"):
        table = labels(language)
        assert set(table["status"]) == set(lifecycle.STATUSES)
        assert set(table["request_type"]) == set(config.REQUEST_TYPES)
        assert set(table["priority"]) == set(config.PRIORITIES)
    assert labels("de")["status"]["pending"] == "Wartet auf Ihre Antwort"
    assert labels("de")["request_type"]["user_help"] == "Anwenderhilfe"
    assert labels("en")["status"]["pending"] == "Waiting for your reply"
    assert labels("de-AT") == labels("de") and labels("fr") == labels("de")


@pytest.mark.parametrize(("asked", "used"), [
    ("fr", "de"), ("de-AT", "de"), ("EN_us", "en"), ("", "de"), ("../en", "de"),
])  # fmt: skip
def test_language_fallback(renderer: Renderer, asked: str, used: str) -> None:
    out = renderer.render("acknowledgement", asked, context())
    assert out == renderer.render("acknowledgement", used, context())


def test_default_language_comes_before_german() -> None:
    english_first = Renderer(default_language="en")
    assert english_first.render("closed", "fr", context()).text.startswith(MARKER["en"])
    assert english_first.render("closed", "de", context()).text.startswith(MARKER["de"])


def test_override_replaces_one_file_only(tmp_path: Path, renderer: Renderer) -> None:
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "acknowledgement.subject.j2").write_text(
        "Eingang bestätigt: {{ ticket.tag }}\n", encoding="utf-8"
    )
    ops = Renderer(override_dir=tmp_path)
    out = ops.render("acknowledgement", "de", context())
    builtin = renderer.render("acknowledgement", "de", context())
    assert out.subject == "Eingang bestätigt: [#10001]"
    assert (out.text, out.html) == (builtin.text, builtin.html)
    assert ops.render("acknowledgement", "en", context()) == renderer.render(
        "acknowledgement", "en", context())  # fmt: skip
    # notify.templates_dir may hold mail/<lang>/… as documented in maildesk.toml.
    nested = tmp_path / "ops"
    (nested / "mail").mkdir(parents=True)
    (tmp_path / "de").rename(nested / "mail" / "de")
    assert Renderer(override_dir=nested).render("acknowledgement", "de", context()).subject == (
        "Eingang bestätigt: [#10001]")  # fmt: skip


def test_override_can_replace_a_layout_and_add_a_language(tmp_path: Path) -> None:
    fr = tmp_path / "fr"
    fr.mkdir()
    for part, body in (("subject", "{{ ticket.tag }} Fermé"),
                       ("txt", "Fermé.\n{{ reference_line }}"),
                       ("html", "<p>Fermé {{ ticket.subject }}</p>")):  # fmt: skip
        (fr / f"closed.{part}.j2").write_text(body, encoding="utf-8")
    ops = Renderer(override_dir=tmp_path)
    closed = ops.render("closed", "fr", context())
    assert closed.subject == "[#10001] Fermé" and closed.text == f"Fermé.\n{REFERENCE}\n"
    assert "&lt;script&gt;" in closed.html  # overrides are autoescaped too
    # A kind the override language lacks comes whole from the fallback language.
    assert ops.render("reopened", "fr", context()).text.startswith(MARKER["de"])


def test_a_missing_context_key_raises(renderer: Renderer) -> None:
    for kind, key in (("acknowledgement", "reference_line"), ("followup_created", "old_ticket"),
                      ("agent_reply", "text"), ("command_result", "commands"),
                      ("closed", "signature_name")):  # fmt: skip
        ctx = {k: v for k, v in context().items() if k != key}
        with pytest.raises(UndefinedError, match=key):
            renderer.render(kind, "de", ctx)


def test_an_unknown_kind_is_a_clear_error(renderer: Renderer) -> None:
    with pytest.raises(UnknownTemplate, match=r"'reminder_3'.*searched .*templates/mail/de"):
        renderer.render("reminder_3", "en", context())
    with pytest.raises(ValueError, match="invalid notification kind"):
        renderer.render("../de/closed", "de", context())
    with pytest.raises(ValueError, match="_layout"):
        renderer.render("_layout", "de", context())


def test_a_missing_override_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Renderer(override_dir=tmp_path / "nope")


def test_subject_is_one_line(renderer: Renderer) -> None:
    ticket = {**context()["ticket"], "subject": "Zeile eins\r\nBcc: x@evil.example\n  zwei"}
    out = renderer.render("agent_reply", "de", context(ticket=ticket))
    assert out.subject == "[#10001] Zeile eins Bcc: x@evil.example zwei"


def test_builtin_templates_are_complete_per_language() -> None:
    for language in LANGUAGES:
        names = sorted(p.name for p in (BUILTIN_DIR / language).iterdir())
        expected = sorted([f"{k}.{part}.j2" for k in KINDS + RULE_KINDS + TICKETLESS_KINDS
                           + OWN_CONTEXT_KINDS for part in ("subject", "txt", "html")]
                          + ["_layout.html.j2", "_layout.txt.j2"])  # fmt: skip
        assert names == expected


#: The context each own-context kind gets from deliver/mailcontext.py, and a
#: piece of text per language the reader must see.
OWN_CONTEXT: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "agent_notice_category": ({"category": f"Abrechnung {EVIL}", "category_group": "Team B"},
                              {"de": "Team B", "en": "Team B"}),
    "agent_notice_sla_yellow": ({"measure": "first_response", "limit_hours": 16,
                                 "hours_left": 3.5, "hours_over": 0},
                                {"de": "3.5", "en": "3.5"}),
    "agent_notice_sla_red": ({"measure": "resolution", "limit_hours": 80, "hours_left": 0,
                              "hours_over": 2.5}, {"de": "2.5", "en": "2.5"}),
    "agent_notice_statement": ({"statement_kind": "ask", "statement_from": "dev@partner.example",
                                "statement_name": f"Dora {EVIL}", "statement_verified": False,
                                "statement_why": "not sent from the asked address"},
                               {"de": "Nicht bestätigt", "en": "dev@partner.example"}),
    "third_party_ask": ({"request_text": f"Können Sie das prüfen? {EVIL}",
                         "asked_by": "max@support.example",
                         "customer_messages": [{"author": "Jürgen", "text": "Mein Drucker.",
                                                "date": datetime(2026, 11, 2, 9, 15,
                                                                 tzinfo=UTC)}]},
                        {"de": "Können Sie das prüfen?", "en": "Mein Drucker."}),
    "third_party_forward": ({"request_text": "Lob vom Kunden", "asked_by": "other@x.example",
                             "customer_messages": []},
                            {"de": "Lob vom Kunden", "en": "Lob vom Kunden"}),
}


def test_own_context_table_covers_the_kinds() -> None:
    assert sorted(OWN_CONTEXT) == sorted(OWN_CONTEXT_KINDS)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", OWN_CONTEXT_KINDS)
def test_own_context_kinds_render(renderer: Renderer, kind: str, language: str) -> None:
    extra, visible = OWN_CONTEXT[kind]
    out = renderer.render(kind, language, context(**extra))
    assert out.subject and "\n" not in out.subject and "[#10001]" in out.subject
    assert "<script" not in out.html.lower()
    assert visible[language] in out.text and visible[language] in out.html
    for part in (out.text, out.html):
        assert "Ã" not in part
    assert f'<html lang="{language}">' in out.html
    assert "&lt;script&gt;" in out.html or EVIL not in out.text
    assert out.text.endswith("\n") and "{{" not in out.text and "{%" not in out.text


#: Every kind that shows the sender in a "From:" line, with the keys it needs.
FROM_LINE_KINDS = {"agent_notice_new": {}, "agent_notice_reply": {},
                   "agent_notice_second_level": {"end_customer": {"name": "",
                                                                  "email": "end@kunde.example"}}}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(FROM_LINE_KINDS))
def test_a_sender_without_display_name_is_shown_as_the_plain_address(
        renderer: Renderer, kind: str, language: str) -> None:
    """Issue 17: "Von: <x@y>" looked broken; the agent sees "Von: x@y"."""
    ctx = context(customer={"name": "", "email": "x@kunde.example"}, **FROM_LINE_KINDS[kind])
    out = renderer.render(kind, language, ctx)
    label = {"de": "Von:", "en": "From:"}[language]
    if kind == "agent_notice_second_level":
        label = "Partner:"
    line = next(li for li in out.text.splitlines() if li.strip().startswith(label))
    assert line.split(label, 1)[1].strip() == "x@kunde.example"
    assert "&lt;x@kunde.example&gt;" not in out.html and "<x@kunde.example>" not in out.text
    assert "x@kunde.example" in out.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_sender_with_display_name_keeps_name_and_address(renderer: Renderer,
                                                           language: str) -> None:
    out = renderer.render("agent_notice_new", language,
                          context(customer={"name": "Jürgen Kunde", "email": "j@kunde.example"}))
    assert "Jürgen Kunde <j@kunde.example>" in out.text
    assert "Jürgen Kunde &lt;j@kunde.example&gt;" in out.html
