"""`maildesk check` renders every notification kind in de and en and the
portal's login page (issue 17), and names the template when one is missing
or does not render, so a broken install or override shows before a mail
is parked as failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from maildesk.cli.app import main
from maildesk.cli.check_templates import KINDS, check_templates, mail_problems
from maildesk.config import Settings, load_settings
from maildesk.deliver.render import BUILTIN_DIR, Renderer, shipped_templates
from maildesk.web import page_render

REPO = Path(__file__).resolve().parents[2]


def settings_with(tmp_path: Path, **env: str) -> Settings:
    return load_settings(REPO / "maildesk.toml",
                         {"MAILDESK_DATA_DIR": str(tmp_path / "var"), **env})


def test_the_kind_list_is_every_kind_the_templates_have() -> None:
    assert sorted(KINDS) == Renderer().kinds()


def test_one_finder_serves_mail_pages_and_the_script() -> None:
    root = shipped_templates()
    assert BUILTIN_DIR == root / "mail"
    assert page_render.BUILTIN_DIR == root / "web"
    from maildesk.web.portal.new_request_page import SCRIPT_FILE

    assert SCRIPT_FILE == root / "web" / "static" / "suggest.js" and SCRIPT_FILE.is_file()


def test_the_shipped_templates_pass(tmp_path: Path) -> None:
    mail, pages = check_templates(settings_with(tmp_path))
    assert mail.ok, mail.detail
    assert mail.detail == f"{len(KINDS)} kinds render in de, en"
    assert pages.ok and pages.detail == "portal_login renders in de, en"


def test_a_broken_override_fails_naming_the_file(tmp_path: Path) -> None:
    override = tmp_path / "templates"
    (override / "mail" / "en").mkdir(parents=True)
    (override / "mail" / "en" / "closed.txt.j2").write_text("Ticket {{ ticket.number }\n")
    (override / "mail" / "de").mkdir()
    (override / "mail" / "de" / "reopened.subject.j2").write_text("{{ tikcet.tag }} offen\n")
    (override / "web" / "en").mkdir(parents=True)
    (override / "web" / "en" / "portal_login.html.j2").write_text(
        '{% extends "_base.html.j2" %}{% block content %}{{ emial }}{% endblock %}')

    mail, pages = check_templates(settings_with(
        tmp_path, MAILDESK_NOTIFY__TEMPLATES_DIR=str(override)))

    assert not mail.ok
    assert f"{override}/mail/en/closed.txt.j2:1: TemplateSyntaxError" in mail.detail
    assert "de/reopened.subject.j2: UndefinedError: 'tikcet' is undefined" in mail.detail
    assert "acknowledgement" not in mail.detail  # the rest still passes
    assert not pages.ok
    assert "en/portal_login.html.j2: UndefinedError: 'emial' is undefined" in pages.detail


def test_a_kind_one_language_lacks_is_missing(tmp_path: Path) -> None:
    builtin = tmp_path / "mail"
    shutil.copytree(BUILTIN_DIR, builtin)
    (builtin / "en" / "solution.html.j2").unlink()

    problems = mail_problems(Renderer(builtin_dir=builtin))

    assert problems == ["en/solution.html.j2 missing (the mail would go out in de)"]


def test_check_reports_the_templates(tmp_path: Path) -> None:
    override = tmp_path / "templates"
    (override / "mail" / "de").mkdir(parents=True)
    (override / "mail" / "de" / "solution.html.j2").write_text("{% if %}\n")
    env = {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"),
           "MAILDESK_DATA_DIR": str(tmp_path / "var"),
           "MAILDESK_NOTIFY__TEMPLATES_DIR": str(override)}
    result = CliRunner().invoke(main, ["check", "--json"], env=env)

    items = {name: r for r in json.loads(result.output)
             for name in ("mail templates", "page templates") if r["name"].startswith(name)}
    assert result.exit_code == 1
    assert not items["mail templates"]["ok"]
    assert "de/solution.html.j2" in items["mail templates"]["detail"]
    assert items["page templates"]["ok"]
