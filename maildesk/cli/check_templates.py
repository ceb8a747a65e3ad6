"""`maildesk check`'s template items: every notification kind and a page render.

A wheel that lost its templates, an override file with a typo or a kind one
language lacks otherwise shows up only when the worker renders that mail
(and parks it as failed) or a customer opens the page. So `check` renders
each kind maildesk sends in every language it ships, with a sample context
of the keys the worker gives (deliver/render.py lists them), plus the
portal's login page, with the same override directory serve uses; a kind
that would fall back to another language counts as missing. Each problem
names the template file.

The sample context and the kind list are data here; :func:`mail_problems`
and :func:`page_problems` only render (jinja2 and the file system).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from maildesk.cli.check import CheckResult
from maildesk.config import Settings
from maildesk.deliver.render import BUILTIN_DIR as MAIL_DIR
from maildesk.deliver.render import Renderer, UnknownTemplate
from maildesk.mail.language import SUPPORTED
from maildesk.web.page_render import BUILTIN_DIR, PageRenderer

#: Every notification kind maildesk sends (a test keeps this equal to the
#: kinds the shipped templates have).
KINDS = (
    "acknowledgement", "agent_notice_category", "agent_notice_new", "agent_notice_reply",
    "agent_notice_second_level", "agent_notice_sla_red", "agent_notice_sla_yellow",
    "agent_notice_solved", "agent_notice_statement", "agent_notice_unverified", "agent_reply",
    "announcement", "auto_close", "closed", "command_result", "end_customer_closed",
    "followup_created", "on_hold_development", "portal_login", "registration", "release_notice",
    "reminder_1", "reminder_2", "reopened", "second_level_solved", "solution",
    "solved_by_customer", "third_party_ask", "third_party_forward",
)  # fmt: skip
#: The page rendered (the one a customer meets first), and the pages' script.
PAGE = "portal_login"
SCRIPT = Path("static") / "suggest.js"

_WHEN = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
_URL = "https://support.example/x/abc"
#: One context with every key any kind reads, optional ones included so
#: their branches render too.
SAMPLE: dict[str, Any] = {
    "ticket": {"number": 10001, "subject": "Drucker druckt nicht", "status": "pending",
               "request_type": "incident", "priority": "normal", "tag": "[#10001]",
               "follow_up_of": 10000},
    "old_ticket": {"number": 10000, "subject": "Drucker"},
    "customer": {"name": "Jürgen Beispiel", "email": "juergen@example.de"},
    "end_customer": {"name": "Erika Ende", "email": "erika@example.de"},
    "agent": {"name": "Max Müller", "email": "max@support.example"},
    "brand": "Beispiel Support", "signature_name": "Ihr Support-Team",
    "reference_line": "[ref:10001.abcdefghijklm]",
    "text": "Guten Tag,\nbitte starten Sie den Drucker neu.",
    "thread": [{"author": "Jürgen Beispiel", "date": _WHEN, "text": "Mein Drucker druckt nicht."}],
    "customer_messages": [{"author": "Jürgen Beispiel", "date": _WHEN, "text": "Mein Drucker."}],
    "files": [{"name": "log.txt", "size_label": "1 KB", "attached": True, "url": _URL}],
    "stop_links": [{"email": "juergen@example.de", "url": _URL}],
    "portal_url": _URL, "csat_url": _URL, "solve_url": _URL, "confirm_url": _URL,
    "login_url": _URL, "unsubscribe_url": _URL, "confirm_days": 14, "minutes": 15,
    "signed_by_agent": False, "handed_over_by": "max@support.example",
    "commands": [{"line": "#status pending", "ok": True, "message": "status: open -> pending"}],
    "held_id": 42, "held_subject": "AW: Drucker", "held_reason": "not signed",
    "category": "Betrieb", "category_group": "2nd-level",
    "measure": "first_response", "limit_hours": 16, "hours_left": 3.5, "hours_over": 0,
    "statement_kind": "ask", "statement_from": "dev@partner.example",
    "statement_name": "Dora Partner", "statement_verified": False,
    "statement_why": "not sent from the asked address",
    "request_text": "Können Sie das prüfen?", "asked_by": "max@support.example",
    "announcement": {"subject": "Wartung", "text": "Am Samstag ist Wartung."},
    "days": 21, "days_left": 4, "asked_at": _WHEN, "planned_version": "2026.3",
    "version": "2026.3", "note": "Druckvorschau repariert", "new_status_label": "Gelöst",
}
#: What the portal's pages get from web/portal/auth.render.
PAGE_SAMPLE: dict[str, Any] = {
    "action": "/portal/login", "csrf_field": "csrf", "csrf_token": "t",
    "csrf_for": {"/portal/logout": "t"}, "brand": "Beispiel Support",
    "logout": "/portal/logout", "logout_everywhere": "/portal/logout-everywhere",
    "login": "/portal/login", "nav_links": {}, "nav": "",
    "sent": False, "error": None, "email": "", "logged_out": False,
}


def _failure(where: str, exc: Exception) -> str:
    """One line naming the file: a syntax error's own file and line, else
    the kind's file the renderer noted."""
    filename = getattr(exc, "filename", None) or getattr(exc, "name", None)
    lineno = getattr(exc, "lineno", None)
    if filename:
        where = f"{filename}{f':{lineno}' if lineno else ''}"
    else:
        notes = [n for n in getattr(exc, "__notes__", ()) if n.startswith("while rendering ")]
        where = notes[-1].removeprefix("while rendering ") if notes else where
    return f"{where}: {type(exc).__name__}: {exc}"


def mail_problems(renderer: Renderer, kinds: tuple[str, ...] = KINDS,
                  languages: tuple[str, ...] = SUPPORTED) -> list[str]:
    """Each kind in each language: missing files and render errors."""
    problems = []
    for kind in kinds:
        for language in languages:
            try:
                chosen = renderer.language_for(kind, language)
                if chosen != language:
                    missing = ", ".join(f"{language}/{name}"
                                        for name in renderer.missing_parts(kind, language))
                    problems.append(f"{missing} missing (the mail would go out in {chosen})")
                    continue
                renderer.render(kind, language, SAMPLE)
            except UnknownTemplate as exc:
                problems.append(str(exc))
            except (TemplateError, ValueError, TypeError, AttributeError, KeyError,
                    OSError) as exc:
                problems.append(_failure(f"{language}/{kind}", exc))
    return problems


def page_problems(renderer: PageRenderer, builtin: Path,
                  languages: tuple[str, ...] = SUPPORTED) -> list[str]:
    """The login page in each language, and the script the portal serves."""
    problems = []
    for language in languages:
        try:
            chosen = renderer.language_for(PAGE, language)
            if chosen != language:
                problems.append(f"{language}/{PAGE}.html.j2 missing (the page would be shown "
                                f"in {chosen})")
                continue
            html = renderer.render(PAGE, language, PAGE_SAMPLE)
            if f'lang="{language}"' not in html:
                problems.append(f"{language}/{PAGE}.html.j2 does not extend _base.html.j2")
        except LookupError as exc:
            problems.append(str(exc))
        except (TemplateError, ValueError, TypeError, AttributeError, KeyError,
                OSError) as exc:
            problems.append(_failure(f"{language}/{PAGE}.html.j2", exc))
    if not (builtin / SCRIPT).is_file():
        problems.append(f"{builtin / SCRIPT} missing (the portal's new-request form)")
    return problems


def _not_installed(directory: Path) -> str | None:
    """One line instead of one per kind when the shipped directory is gone."""
    if directory.is_dir():
        return None
    return (f"{directory} does not exist: this install lacks maildesk's templates "
            "(a wheel must carry them as maildesk/templates/; reinstall maildesk)")


def _summary(problems: list[str], done: str) -> str:
    if not problems:
        return done
    problems = list(dict.fromkeys(problems))  # de and en may fail alike
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return shown + more


def check_templates(settings: Settings) -> list[CheckResult]:
    """Two results: the mail templates, the page templates."""
    override = Path(settings.notify.templates_dir) if settings.notify.templates_dir else None
    where = f" (override {override})" if override else ""
    try:
        mail = Renderer(override, settings.mail.default_language,
                        timezone=settings.calendar.timezone)
    except ValueError as exc:  # override dir or time zone: already a full sentence
        mail_result = CheckResult(f"mail templates{where}", False, str(exc))
    else:
        dirs = ", ".join(str(d) for d in mail.searched()) or str(MAIL_DIR)
        missing = _not_installed(MAIL_DIR)
        problems = [missing] if missing else mail_problems(mail)
        mail_result = CheckResult(
            f"mail templates {dirs}", not problems,
            _summary(problems, f"{len(KINDS)} kinds render in {', '.join(SUPPORTED)}"))
    pages = PageRenderer(override, settings.mail.default_language,
                         timezone=settings.calendar.timezone)
    missing = _not_installed(BUILTIN_DIR)
    problems = [missing] if missing else page_problems(pages, BUILTIN_DIR)
    page_result = CheckResult(
        f"page templates {BUILTIN_DIR}{where}", not problems,
        _summary(problems, f"{PAGE} renders in {', '.join(SUPPORTED)}"))
    return [mail_result, page_result]
