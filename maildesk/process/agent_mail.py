"""An agent's answer to a notification mail (SPEC §1), applied.

The text above the reply line goes to the customer; `#command` lines at its
top are applied (all or nothing) and confirmed to the agent; `#internal`
keeps the text as a note and sends nothing. Runs inside the mail's
transaction, through the same actions the CLI uses (actions/agent.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from maildesk.actions import agent as agent_actions
from maildesk.actions.agent import ActionError
from maildesk.mail.quoting import display_text
from maildesk.models import Agent, Event
from maildesk.process.pipeline.commands import Command, parse_commands
from maildesk.store import tickets as store
from maildesk.tickets import outbox
from maildesk.tickets import writes as tickets
from maildesk.types import ParsedMail, Triage

if TYPE_CHECKING:
    from maildesk.process.apply import Applying


def apply_agent_mail(env: Applying, session: Session, mail: ParsedMail, triage: Triage,
                     ticket: dict[str, Any], inbound_id: int,
                     message_id: str) -> tuple[list[int], bool]:
    """Returns (outbox ids, whether commands were rejected); the caller
    reports the Outcome. An agent answered a notification by mail: the text above
    the reply line goes to the customer; `#command` lines at its top are
    applied (all or nothing) and confirmed to the agent; `#internal`
    keeps the text as a note and sends nothing."""
    assert triage.requester is not None
    email = triage.requester.email
    store.sync_directory(session, env.settings)
    agent = session.exec(select(Agent).where(Agent.email == email)).one()
    commands, body = parse_commands(display_text(mail.text))
    problems = [c for c in commands if not c.ok]
    ids: list[int] = []
    replied = False
    if not problems:
        try:
            with session.begin_nested():
                ids, replied = _agent_actions(env, session, ticket, agent, commands, body,
                                              triage.authenticity, mail, inbound_id)
        except ActionError as exc:
            problems = [Command(f"#{ticket['number']}", "", ok=False, message=str(exc))]
            ids = []
    if not replied:  # kept on the ticket as an internal note: nothing is lost
        events = tickets.add_mail_message(
            session, env.settings, ticket["id"], mail, inbound_id=inbound_id,
            message_id=message_id, author=triage.requester, internal=True,
            authenticity=triage.authenticity)
        store.insert_many(session, Event, events)
    if commands or problems:
        results = command_results(commands, problems)
        ids += outbox.notify_agent(session, env.settings, env.secret, ticket["number"],
                                   email, {"commands": results})
    return ids, bool(problems)


def command_results(commands: list[Command], problems: list[Command]) -> list[dict[str, Any]]:
    """The lines of the command-result mail, in the mail's order: a refused
    line with why (`problem` worded by the template in the agent's language,
    `message` the action's own refusal), a valid line as valid (ok) even
    when the batch was refused; `applied` says whether anything was."""
    applied = not problems
    results = [{"line": c.line, "ok": c.ok, "applied": applied and c.ok,
                "problem": c.problem, "expected": c.expected,
                "message": "" if c.ok else c.message} for c in commands]
    results += [{"line": c.line, "ok": False, "applied": False, "problem": "refused",
                 "expected": "", "message": c.message}
                for c in problems if c not in commands]
    return results


def _agent_actions(env: Applying, session: Session, ticket: dict[str, Any], agent: Agent,
                   commands: list[Any], body: str, authenticity: str, mail: ParsedMail,
                   inbound_id: int) -> tuple[list[int], bool]:
    """The reply (unless #internal or empty) with the mail's attachments
    (inline images stay inline), then the commands. Returns (outbox ids,
    whether a reply to the customer was written)."""
    ids: list[int] = []
    internal = any(c.name == "internal" for c in commands)
    replied = bool(body) and not internal
    fields: dict[str, str | None] = dict.fromkeys(
        ("status", "priority", "type", "assign", "group"))
    for command in commands:
        if command.name in fields:
            fields[command.name] = command.value
    # A reply with "#status solved" is the solution: it goes out as the
    # solution mail, with the satisfaction survey (seed 001).
    solve = replied and fields["status"] == "solved"
    if replied:
        ids += agent_actions.write_reply(session, env.settings, env.secret, ticket,
                                         agent, body, solve=solve,
                                         authenticity=authenticity, files=mail.attachments,
                                         files_kept_in=f"the raw mail (inbound {inbound_id})",
                                         signed=True).outbox_ids
    if solve:
        fields["status"] = None
    if any(v is not None for v in fields.values()):
        current = store.ticket_row(session, ticket["number"]) or ticket
        _, more = agent_actions.change_fields(
            session, env.settings, current, agent.email, status=fields["status"],
            priority=fields["priority"], request_type=fields["type"],
            assign=fields["assign"], group=fields["group"])
        ids += more
    return ids, replied
