"""Notifications that were wrong or missing (issue 15, part A): a status set
without a reply tells the customer, agents get notices in their language,
the sign-off is per language and only once, the command-result mail greets
its recipient in one language, and the history keeps old values."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from maildesk.config import NotifySettings, load_settings
from maildesk.deliver.render import Renderer
from maildesk.deliver.sender import Sender
from maildesk.mail import tokens
from maildesk.models import Outbox
from maildesk.process.agent_mail import command_results
from maildesk.process.pipeline.commands import parse_commands
from maildesk.secret import load_secret
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail
from tests.web.test_api import Api, api, token  # noqa: F401 (the api fixture)

AGENT = "agent@example.com"
ENGLISH = "zoe@example.com"


@pytest.fixture
def team(desk: Desk) -> Desk:
    """The desk with a second, English-speaking agent."""
    env = {**desk.env, "MAILDESK_AGENTS": (
        f'[{{email = "{AGENT}", name = "Demo Agent"}}, '
        f'{{email = "{ENGLISH}", name = "Zoe", language = "en"}}]')}
    return synced(Desk(desk.root, env, load_settings(REPO / "maildesk.toml", env)))


def synced(desk: Desk) -> Desk:
    """The config's agents and groups made rows (as `db upgrade` does)."""
    result = desk.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    return desk


def rows(desk: Desk) -> list[dict]:
    with desk.engine().connect() as connection:
        return [dict(r._mapping) for r in connection.execute(
            select(Outbox.__table__).order_by(Outbox.__table__.c.id))]


def kinds(desk: Desk) -> list[str]:
    return [r["kind"] for r in rows(desk)]


def text_of(desk: Desk, row: dict) -> str:
    """The text part the worker would send for `row`."""
    message, _, _ = Sender(desk.settings, desk.engine()).build(row)
    return str(message.get_body(("plain",)).get_content())


def newest(desk: Desk, kind: str) -> dict:
    return next(r for r in reversed(rows(desk)) if r["kind"] == kind)


def opened(desk: Desk, body: str = "Hallo,\n\nder Drucker streikt.\n") -> int:
    code, outcome = desk.ingest(make_mail(subject="Drucker", body=body))
    assert code == 0 and outcome["action"] == "created", outcome
    return int(outcome["ticket"])


def agent_mail(desk: Desk, number: int, body: str, agent: str = AGENT) -> None:
    """An agent answers the notice of `number` (to the agent's own signed
    reply address, as the notice's Reply-To says)."""
    own = tokens.agent_reply_address(load_secret(desk.settings), "support@example.com",
                                     number, agent)
    code, _ = desk.ingest(make_mail(subject=f"AW: [#{number}] Drucker",
                                    sender=f"Agent <{agent}>", to=own, body=body))
    assert code == 0


# -- solved and on hold tell the customer ------------------------------------------------------

def test_set_status_solved_sends_the_solution_with_the_survey(desk: Desk) -> None:
    number = opened(desk, body="Hallo,\n\nmein geheimer Kundentext.\n")
    result = desk.cli("tickets", "set", str(number), "--status", "solved", "--agent", AGENT)
    assert result.exit_code == 0, result.output
    solution = newest(desk, "solution")
    assert solution["to_addrs"] == "erika@kunde.de"
    text = text_of(desk, solution)
    assert "als gelöst markiert" in text and "/csat/" in text
    assert "geheimer Kundentext" not in text  # no reply: the customer's mail is not the solution


def test_status_solved_by_mail_without_text_sends_the_solution(desk: Desk) -> None:
    number = opened(desk)
    agent_mail(desk, number, "#status solved\n")
    assert desk.show(number)["status"] == "solved"
    assert kinds(desk).count("solution") == 1


async def test_status_solved_through_the_api_sends_the_solution(api: Api) -> None:  # noqa: F811
    number = opened(api.desk)
    status, _, changed = await api.patch(f"/tickets/{number}", token(api.desk),
                                         {"status": "solved"})
    assert status == 200, changed
    assert kinds(api.desk).count("solution") == 1


def test_a_reply_with_solve_sends_one_solution(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "reply", str(number), "--agent", AGENT, "--solve",
                      "--text", "Treiber neu installiert.")
    assert result.exit_code == 0, result.output
    agent_mail(desk, number, "#status solved\n\nNoch ein Hinweis dazu.\n")
    assert kinds(desk).count("solution") == 2  # one per reply, never a second per reply
    assert "agent_reply" not in kinds(desk)


def test_on_hold_tells_the_customer_once_with_the_planned_version(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "set", str(number), "--status", "on_hold",
                      "--planned-version", "5.2", "--agent", AGENT)
    assert result.exit_code == 0, result.output
    desk.cli("tickets", "set", str(number), "--status", "on_hold", "--agent", AGENT)
    assert kinds(desk).count("on_hold_development") == 1
    text = text_of(desk, newest(desk, "on_hold_development"))
    assert "Entwicklung" in text and "Version 5.2" in text
    assert "der Drucker streikt" not in text


# -- languages and the sign-off ----------------------------------------------------------------

def test_an_english_agent_gets_english_notices(team: Desk) -> None:
    number = opened(team)
    notices = {r["to_addrs"]: r["language"] for r in rows(team)
               if r["kind"] == "agent_notice_new"}
    assert notices == {AGENT: "de", ENGLISH: "en"}
    assert "Ticket" in text_of(team, newest(team, "agent_notice_new"))
    agent_mail(team, number, "#priority urgent\n", agent=ENGLISH)
    result = newest(team, "command_result")
    assert result["language"] == "en" and result["to_addrs"] == ENGLISH


def test_signature_name_per_language() -> None:
    assert NotifySettings().signature("en") == "Your support team"
    assert NotifySettings().signature("de") == "Ihr Support-Team"
    old = NotifySettings(signature_name="Das Team von Beispiel")  # the old form: one string
    assert old.signature("en") == old.signature("de") == "Das Team von Beispiel"
    table = NotifySettings(signature_name={"en": "The Example team"})
    assert (table.signature("en"), table.signature("de")) == ("The Example team",
                                                              "Ihr Support-Team")
    # the shipped config's old German default means both defaults
    assert NotifySettings(signature_name="Ihr Support-Team").signature("en") == \
        "Your support team"


def test_an_english_mail_ends_with_the_english_signature(desk: Desk) -> None:
    env = {**desk.env, "MAILDESK_MAIL__DEFAULT_LANGUAGE": "en"}
    desk = Desk(desk.root, env, load_settings(REPO / "maildesk.toml", env))
    opened(desk)
    text = text_of(desk, newest(desk, "acknowledgement"))
    assert "Your support team" in text and "Ihr Support-Team" not in text


def test_an_agent_reply_by_mail_has_one_sign_off(desk: Desk) -> None:
    number = opened(desk)
    agent_mail(desk, number, "Bitte den Treiber neu installieren.\n\nViele Grüße\nDemo\n")
    text = text_of(desk, newest(desk, "agent_reply"))
    assert "Viele Grüße\nDemo" in text and "Mit freundlichen Grüßen" not in text
    assert "Ihr Support-Team" in text
    desk.cli("tickets", "reply", str(number), "--agent", AGENT, "--text", "Ergänzung.")
    by_cli = text_of(desk, newest(desk, "agent_reply"))
    assert "Mit freundlichen Grüßen" in by_cli  # written without one: the layout's


# -- the command-result mail -------------------------------------------------------------------

def test_a_refused_batch_shows_valid_lines_as_valid() -> None:
    commands, _ = parse_commands("#priority high\n#stauts solved\n")
    problems = [c for c in commands if not c.ok]
    results = command_results(commands, problems)
    assert [(r["line"], r["ok"], r["applied"]) for r in results] == [
        ("#priority high", True, False), ("#stauts solved", False, False)]
    text = Renderer().render("command_result", "de", {
        "ticket": {"number": 10001, "subject": "Drucker", "tag": "[#10001]",
                   "status_label": "Neu"},
        "agent": {"name": "Zoe", "email": ENGLISH}, "commands": results,
        "reference_line": "[ref:x]", "signature_name": "Ihr Support-Team",
        "brand": "Support"}).text
    assert "[gültig]  #priority high" in text and "[FEHLER]  #stauts solved" in text
    assert "unbekannter Befehl" in text
    assert "unknown" not in text and "applied" not in text  # no English in the German mail


def test_the_command_result_greets_its_recipient(team: Desk) -> None:
    number = opened(team)
    team.cli("tickets", "set", str(number), "--assign", AGENT)
    agent_mail(team, number, "#priority high\n", agent=ENGLISH)
    text = text_of(team, newest(team, "command_result"))
    assert "Hello Zoe," in text and "Demo Agent" not in text


# -- the history -------------------------------------------------------------------------------

def test_assignee_and_group_changes_keep_the_old_value(desk: Desk) -> None:
    env = {**desk.env, "MAILDESK_AGENTS": (
        f'[{{email = "{AGENT}"}}, {{email = "{ENGLISH}", language = "en"}}]'),
        "MAILDESK_GROUPS": f'[{{name = "erste", members = ["{AGENT}"]}}, '
                           f'{{name = "zweite", members = ["{ENGLISH}"]}}]'}
    desk = synced(Desk(desk.root, env, load_settings(REPO / "maildesk.toml", env)))
    number = opened(desk)
    for args in (("--assign", AGENT, "--group", "erste"), ("--assign", ENGLISH,
                                                          "--group", "zweite")):
        result = desk.cli("tickets", "set", str(number), *args)
        assert result.exit_code == 0, result.output
    events = [(e["field"], e["old"], e["new"]) for e in desk.show(number)["events"]]
    assert ("assignee", AGENT, ENGLISH) in events and ("group", "erste", "zweite") in events


def test_set_by_an_unknown_agent_is_refused_and_changes_nothing(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "set", str(number), "--status", "pending",
                      "--agent", "boss@example.com")
    assert result.exit_code == 1 and "not an agent" in result.stderr
    assert desk.show(number)["status"] == "new"
