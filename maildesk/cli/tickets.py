"""`maildesk` commands for the ticket desk: tickets, customers, release."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from maildesk import db, views
from maildesk.cli.common import (
    App,
    F,
    emit_json,
    fail,
    handles_errors,
    pass_app,
)


@click.group("tickets")
def tickets_group() -> None:
    """List and read tickets."""


@tickets_group.command("list")
@click.option("--status", type=click.Choice(views.STATUSES), default=None)
@click.option("--search", default=None, help="Text in subject, body or sender; or a number.")
@click.option("--sla", type=click.Choice(["green", "yellow", "red"]), default=None,
              help="Only tickets still being worked on with this SLA light.")
@click.option("--overdue", is_flag=True, help="Only tickets past an SLA limit (red).")
@click.option("--assignee", default=None, help="An agent's address, or 'none'.")
@click.option("--group", default=None, help="A group's name, or 'none'.")
@click.option("--requester", default=None, help="The customer's address.")
@click.option("--organisation", default=None, help="An organisation's name.")
@click.option("--category", default=None, help="A main category.")
@click.option("--type", "request_type",
              type=click.Choice(["user_help", "incident", "product_request", "urgent"]))
@click.option("--channel", type=click.Choice(["email", "phone", "web"]))
@click.option("--level", "support_level", type=click.IntRange(1, 2), default=None,
              help="Support level: 1 the partner's, 2 handed to the central support.")
@click.option("--kind", "requester_kind", type=click.Choice(["internal", "external"]),
              default=None, help="The requester's kind (internal: a partner).")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON with stable keys, ISO 8601 times.")
@pass_app
@handles_errors
def tickets_list(
    app: App, status: str | None, search: str | None, sla: str | None, overdue: bool,
    assignee: str | None, group: str | None, requester: str | None,
    organisation: str | None, category: str | None,
    request_type: str | None, channel: str | None, support_level: int | None,
    requester_kind: str | None, limit: int, as_json: bool,
) -> None:
    """Tickets, newest first, with their SLA light (green/yellow/red)."""
    from maildesk.store.tickets import TicketFilter

    wanted = TicketFilter(assignee=assignee, group=group, requester=requester,
                          organisation=organisation, category=category,
                          request_type=request_type, channel=channel,
                          support_level=support_level, requester_kind=requester_kind)
    with db.session_scope(app.ready_engine()) as session:
        rows = views.ticket_list(session, app.settings, status, search, limit, sla, overdue,
                                 wanted=wanted)
    if as_json:
        emit_json(rows)
    else:
        click.echo(views.ticket_table(rows))


@tickets_group.command("show")
@click.argument("number", type=str)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def tickets_show(app: App, number: str, as_json: bool) -> None:
    """One ticket with its messages, attachments and history."""
    with db.session_scope(app.ready_engine()) as session:
        data = views.ticket_detail(session, app.settings, _number(number))
    if data is None:
        fail(f"no ticket #{number.lstrip('#')}", 1)
    if as_json:
        emit_json(data)
    else:
        click.echo(views.ticket_text(data))


def _number(value: str) -> int:
    if not value.lstrip("#").isdigit():
        fail(f"{value!r} is not a ticket number", 2)
    return int(value.lstrip("#"))


def _text(text: str | None, file_: Path | None) -> str:
    if file_ is not None:
        return file_.read_text(encoding="utf-8")
    if text is None:
        fail("give the text with --text TEXT or --text-file FILE ('-' for stdin)", 2)
    return text


def _run_action(func: Callable[[], Any]) -> Any:
    from maildesk.actions.agent import ActionError
    from maildesk.actions.uploads import UploadRefused

    try:
        return func()
    except UploadRefused as exc:
        fail(f"not sent: {exc}", 2)
    except ActionError as exc:
        fail(str(exc), 1)


_ATTACH = click.option(
    "--attach", "attach", multiple=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="A file to attach (repeat for more); limits.max_attachment_bytes applies.")


def _files(app: App, paths: tuple[Path, ...]) -> list[Any]:
    """The files as the actions take them, each refused by name before its
    bytes are read when it is over the limit."""
    import mimetypes

    from maildesk.actions import uploads

    limit = app.settings.limits.max_attachment_bytes
    files = []
    for path in paths:
        size = path.stat().st_size
        if size > limit:
            fail(f"not sent: {path}: {size:,} bytes is more than limits.max_attachment_bytes "
                 f"({limit:,} bytes)", 2)
        files.append(uploads.uploaded(path.name, mimetypes.guess_type(path.name)[0],
                                      path.read_bytes()))
    return files


def _attached(files: list[Any]) -> str:
    return f", {len(files)} file(s) attached" if files else ""


_TEXT_OPTIONS = [
    click.option("--text", default=None, help="The text."),
    click.option("--text-file", "text_file", default=None,
                 type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
                 help="Read the text from a file ('-' for standard input)."),
]


def _with_text(func: F) -> F:
    for option in reversed(_TEXT_OPTIONS):
        func = option(func)
    return func


@tickets_group.command("create")
@click.option("--requester", required=True, help="The customer's address.")
@click.option("--name", "requester_name", default="", help="The customer's name.")
@click.option("--subject", required=True)
@_with_text
@click.option("--channel", type=click.Choice(["phone", "web", "email"]), default="phone",
              show_default=True)
@click.option("--type", "request_type",
              type=click.Choice(["user_help", "incident", "product_request", "urgent"]),
              default="user_help", show_default=True, help="The priority follows it.")
@click.option("--category", default=None,
              help="'Main' or 'Main/Sub'; with [[categories]] in the config one of them "
                   "(its group is assigned).")
@click.option("--no-ack", "no_ack", is_flag=True,
              help="Send the customer no acknowledgement.")
@click.option("--end-customer", "end_customer", default=None, metavar="EMAIL",
              help="The end customer the ticket is about, when the requester is an internal "
                   "customer (a partner); found or created as a customer, told nothing.")
@click.option("--agent", "actor", default=None,
              help="Who records it (default: cli:<user>), for the history.")
@pass_app
@handles_errors
def tickets_create(app: App, requester: str, requester_name: str, subject: str,
                   text: str | None, text_file: Path | None, channel: str,
                   request_type: str, category: str | None, no_ack: bool,
                   end_customer: str | None, actor: str | None) -> None:
    """Open a ticket without an incoming mail (a phone call, a web form). The
    customer gets the acknowledgement with the number and the reply address
    unless --no-ack."""
    from maildesk.actions import agent as agent_actions
    from maildesk.actions import intake

    body = sys.stdin.read() if text_file == Path("-") else _text(text, text_file)
    try:
        opened = intake.open_ticket(
            app.ready_engine(), app.settings, requester=requester,
            requester_name=requester_name, subject=subject, text=body,
            actor=actor or agent_actions.cli_actor(), dispatch=app.hand_over,
            channel=channel, request_type=request_type, category=category,
            acknowledge=not no_ack, end_customer=end_customer)
    except intake.IntakeError as exc:
        fail(str(exc), 2)
    told = "acknowledgement queued" if opened.outbox_ids and not no_ack else "nobody told"
    click.echo(f"#{opened.number}: created for {requester.lower()} ({channel}); {told}")


@tickets_group.command("reply")
@click.argument("number")
@click.option("--agent", "agent", required=True, help="The agent's address (from the config).")
@click.option("--solve", is_flag=True, help="This is the solution: the ticket becomes solved.")
@_with_text
@_ATTACH
@pass_app
@handles_errors
def tickets_reply(app: App, number: str, agent: str, solve: bool, text: str | None,
                  text_file: Path | None, attach: tuple[Path, ...]) -> None:
    """Answer the customer (a public reply; a new ticket becomes open).

    The reply is stored with its Message-ID, reply address and body
    reference, so that the customer's answer threads onto the ticket.
    """
    from maildesk.actions import agent as agent_actions

    body = sys.stdin.read() if text_file == Path("-") else _text(text, text_file)
    files = _files(app, attach)
    result = _run_action(lambda: agent_actions.reply(
        app.ready_engine(), app.settings, _number(number), agent, body, solve=solve,
        dispatch=app.hand_over, files=files))
    click.echo(f"#{result.number}: reply stored as {result.message_id}, status "
               f"{result.status}{_attached(files)}")


@tickets_group.command("note")
@click.argument("number")
@click.option("--agent", "agent", required=True, help="The agent's address (from the config).")
@_with_text
@_ATTACH
@pass_app
@handles_errors
def tickets_note(app: App, number: str, agent: str, text: str | None,
                 text_file: Path | None, attach: tuple[Path, ...]) -> None:
    """Add an internal note (never sent to the customer)."""
    from maildesk.actions import agent as agent_actions

    body = sys.stdin.read() if text_file == Path("-") else _text(text, text_file)
    files = _files(app, attach)
    _run_action(lambda: agent_actions.note(
        app.ready_engine(), app.settings, _number(number), agent, body, files=files))
    click.echo(f"#{_number(number)}: note added{_attached(files)}")


def _third_party(app: App, kind: str, number: str, to: str, agent: str | None,
                 text: str, language: str | None) -> None:
    from maildesk.actions import agent as agent_actions
    from maildesk.actions import thirdparty

    result = _run_action(lambda: thirdparty.send(
        app.ready_engine(), app.settings, _number(number), kind, to, text,
        actor=agent_actions.cli_actor(), agent_email=agent, language=language,
        dispatch=app.hand_over))
    done = "asked for a statement" if kind == "ask" else "forwarded for information"
    click.echo(f"#{result.number}: {result.to} {done} (request {result.id}); answers to "
               f"{result.reply_to} become internal notes")


_THIRD_PARTY_OPTIONS = [
    click.option("--to", "to", required=True, metavar="EMAIL", help="The third person's address."),
    click.option("--agent", "agent", default=None,
                 help="The agent asking (from the config): told of the answer; default: "
                      "the assignee, else the group."),
    click.option("--language", type=click.Choice(["de", "en"]), default=None,
                 help="The mail's language (default: the ticket's)."),
]


def _with_third_party(func: F) -> F:
    for option in reversed(_THIRD_PARTY_OPTIONS):
        func = option(func)
    return func


@tickets_group.command("ask")
@click.argument("number")
@_with_third_party
@_with_text
@pass_app
@handles_errors
def tickets_ask(app: App, number: str, to: str, agent: str | None, language: str | None,
                text: str | None, text_file: Path | None) -> None:
    """Ask a third person for a statement: they get the ticket's subject, the
    customer's messages and your question, with a reply address of their
    own; their answer becomes an internal note (never public, never
    reopening) and the agent is told."""
    body = sys.stdin.read() if text_file == Path("-") else _text(text, text_file)
    _third_party(app, "ask", number, to, agent, body, language)


@tickets_group.command("forward")
@click.argument("number")
@_with_third_party
@_with_text
@pass_app
@handles_errors
def tickets_forward(app: App, number: str, to: str, agent: str | None, language: str | None,
                    text: str | None, text_file: Path | None) -> None:
    """Forward the ticket to someone for information (e.g. to pass on
    praise), with an optional text; an answer becomes an internal note."""
    if text_file == Path("-"):
        body = sys.stdin.read()
    else:
        body = _text(text, text_file) if text is not None or text_file is not None else ""
    _third_party(app, "forward", number, to, agent, body, language)


#: The option of `tickets set` that gives an action's field.
_SET_OPTIONS = {"category": "--category", "add_cc": "--add-cc", "remove_cc": "--remove-cc",
                "add_followers": "--add-follower", "remove_followers": "--remove-follower",
                "support_level": "--level", "end_customer": "--end-customer"}


@tickets_group.command("set")
@click.argument("number")
@click.option("--status", type=click.Choice(["open", "pending", "on_hold", "solved", "closed"]))
@click.option("--priority", type=click.Choice(["low", "normal", "high"]))
@click.option("--type", "request_type",
              type=click.Choice(["user_help", "incident", "product_request", "urgent"]),
              help="Request type; the priority follows it unless set explicitly.")
@click.option("--assign", default=None, help="Agent address, or 'none'.")
@click.option("--group", default=None, help="Group name, or 'none'.")
@click.option("--planned-version", default=None,
              help="The version that will ship the fix (with --status on_hold); '' clears it.")
@click.option("--dev-item", default=None, help="The development item (e.g. DEV-123).")
@click.option("--category", default=None,
              help="'Main' or 'Main/Sub', or 'none'; with [[categories]] in the config one "
                   "of them, and a new main category assigns its group (and tells it).")
@click.option("--add-cc", "add_cc", multiple=True, metavar="EMAIL",
              help="Put an address in CC (repeat for more); a follower becomes CC.")
@click.option("--remove-cc", "remove_cc", multiple=True, metavar="EMAIL",
              help="Take an address out of CC (repeat for more).")
@click.option("--add-follower", "add_followers", multiple=True, metavar="EMAIL",
              help="Make an address a follower (repeat for more); a CC becomes follower.")
@click.option("--remove-follower", "remove_followers", multiple=True, metavar="EMAIL",
              help="Take a follower off the ticket (repeat for more).")
@click.option("--level", "support_level", type=click.IntRange(1, 2), default=None,
              help="2: hand a partner's ticket (internal requester) to the central support "
                   "([second_level] group is assigned and told); 1: back to the partner.")
@click.option("--end-customer", "end_customer", default=None, metavar="EMAIL",
              help="The partner's end customer (only for an internal requester), or 'none'.")
@click.option("--agent", "actor", default=None,
              help="The agent making the change (an address from the config; default: "
                   "cli:<user>), for the history.")
@pass_app
@handles_errors
def tickets_set(app: App, number: str, status: str | None, priority: str | None,
                request_type: str | None, assign: str | None, group: str | None,
                planned_version: str | None, dev_item: str | None, category: str | None,
                add_cc: tuple[str, ...], remove_cc: tuple[str, ...],
                add_followers: tuple[str, ...], remove_followers: tuple[str, ...],
                support_level: int | None, end_customer: str | None,
                actor: str | None) -> None:
    """Change status, priority, request type, assignee, group, category, CC
    and followers, or link the ticket to a development item and planned
    version. CC and followers get a copy of every public reply; removing an
    address that is not there (in that role) is refused and changes nothing.
    --level 2 hands a partner's ticket to the central support; --end-customer
    names the partner's end customer (told only when the ticket is closed)."""
    from maildesk.actions import agent as agent_actions

    if not any(v is not None for v in (status, priority, request_type, assign, group,
                                       planned_version, dev_item, category, support_level,
                                       end_customer)) and not any(
            (add_cc, remove_cc, add_followers, remove_followers)):
        fail("nothing to set: give --status, --priority, --type, --assign, --group, "
             "--planned-version, --dev-item, --category, --add-cc, --remove-cc, "
             "--add-follower, --remove-follower, --level or --end-customer", 2)

    def change() -> list[str]:
        try:
            return agent_actions.set_fields(
                app.ready_engine(), app.settings, _number(number),
                actor or agent_actions.cli_actor(), status=status, priority=priority,
                request_type=request_type, assign=assign, group=group,
                planned_version=planned_version, dev_item=dev_item, category=category,
                add_cc=add_cc, remove_cc=remove_cc, add_followers=add_followers,
                remove_followers=remove_followers, support_level=support_level,
                end_customer=end_customer, dispatch=app.hand_over)
        except agent_actions.ActionError as exc:  # named by the option, not the API field
            option = _SET_OPTIONS.get(exc.field or "")
            if option is None or not str(exc).startswith(f"{exc.field}: "):
                raise
            raise agent_actions.ActionError(option + str(exc)[len(exc.field or ""):],
                                            exc.field) from None

    changes = _run_action(change)
    click.echo("\n".join(f"#{_number(number)} {c}" for c in changes) or "nothing changed")


@click.group("release")
def release_group() -> None:
    """Releases that tickets wait for (status on_hold, --planned-version)."""


@release_group.command("publish")
@click.argument("version")
@click.option("--note", default=None, help="A line about the release for the customers.")
@click.option("--agent", "actor", default=None, help="Who publishes (for the history).")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def release_publish(app: App, version: str, note: str | None, actor: str | None,
                    as_json: bool) -> None:
    """Tell every requester whose ticket waits for VERSION, and move those
    tickets on (rules.release_status). Publishing twice tells nobody twice."""
    from maildesk.actions.agent import cli_actor
    from maildesk.actions.release import publish
    from maildesk.deliver.broker import hand_over

    result = publish(app.ready_engine(), app.settings, version, note, actor or cli_actor())
    hand_over(app.settings, result.outbox_ids)
    if as_json:
        emit_json({"version": version, "tickets": result.tickets,
                   "notifications": len(result.outbox_ids)})
    else:
        click.echo(release_line(version, result.tickets))


def release_line(version: str, tickets: list[int]) -> str:
    """What `release publish` prints: "version 5.2: 1 ticket (#10001)";
    pure, so the singular is tested without a database."""
    noun = "ticket" if len(tickets) == 1 else "tickets"
    numbers = ", ".join(f"#{n}" for n in tickets) or "none waiting"
    return f"version {version}: {len(tickets)} {noun} ({numbers})"


#: What app.py adds to the `maildesk` group.
COMMANDS = [tickets_group, release_group]
