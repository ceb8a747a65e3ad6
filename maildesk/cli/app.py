"""The `maildesk` command. Builds settings and engine, passes them down.

Exit codes follow sysexits where an MTA reads them: 0 taken, 65 not a mail,
75 try again later, 78 configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from maildesk import __version__, db
from maildesk.cli import views
from maildesk.config import ConfigError, Settings, default_config_path, load_settings
from maildesk.logsetup import setup_logging
from maildesk.store import tickets as store

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """Settings and engine, made on first use so `--help` needs neither."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            setup_logging(self._settings.log)
        return self._settings

    @property
    def config_source(self) -> str:
        """What error messages name as the config's origin."""
        return str(self.config_path or "built-in defaults")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.settings.database_url, self.settings.database.echo)
        return self._engine

    def require_shared_secret(self) -> None:
        """serve and worker: refuse a generated secret on PostgreSQL."""
        from maildesk.secret import shared_secret_problem

        problem = shared_secret_problem(self.settings, self.config_source)
        if problem:
            fail(problem, EX_CONFIG)

    def hand_over(self, outbox_ids: list[int]) -> None:
        """Committed notifications onto the broker (Redis; with the embedded
        one, serve's sweep sends them)."""
        from maildesk.deliver.broker import hand_over

        hand_over(self.settings, outbox_ids)

    def ready_engine(self) -> Engine:
        """The engine, after checking the schema is there and current."""
        db.require_schema(self.engine, self.settings.database_url)
        return self.engine


def fail(message: str, code: int) -> None:
    click.echo(f"maildesk: {message}", err=True)
    sys.exit(code)


def handles_errors(func: F) -> F:
    """Turn the errors a person can act on into one clear line and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EX_CONFIG)
        except db.SchemaError as exc:
            fail(str(exc), EX_CONFIG)
        except (db.StoreUnavailable, OperationalError) as exc:
            fail(f"database unavailable, try again later: {getattr(exc, 'orig', exc)}",
                 EX_TEMPFAIL)
        except SQLAlchemyError as exc:
            fail(f"database error: {exc}", EX_SOFTWARE)

    return wrapper  # type: ignore[return-value]


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Config file (default: $MAILDESK_CONFIG, else ./maildesk.toml if present, "
                   "else built-in defaults).")
@click.version_option(__version__, prog_name="maildesk")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """maildesk: an email-driven helpdesk.

    Customers write to a support address and get a ticket; their replies
    thread onto it. Every key of the config can be overridden by an
    environment variable MAILDESK_<SECTION>__<KEY> (top-level: MAILDESK_<KEY>).
    """
    ctx.obj = App(config_path or default_config_path())


pass_app = click.make_pass_decorator(App)


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@pass_app
@handles_errors
def db_upgrade(app: App) -> None:
    """Create the schema or migrate it to this version; sync agents and groups
    from the config."""
    before, after = db.upgrade(app.engine)
    with db.session_scope(app.engine) as session:
        store.sync_directory(session, app.settings)
    where = db.safe_url(app.settings.database_url)
    if before == after:
        click.echo(f"database {where} is up to date (revision {after})")
    else:
        click.echo(f"database {where} upgraded from {before or 'empty'} to revision {after}")


@main.command("ingest")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the mail from this file instead of standard input.")
@click.option("--recipient", "recipients", multiple=True,
              help="Envelope recipient (Postfix: ${recipient}); routes the mail. Repeatable.")
@click.option("--sender", default=None, help="Envelope sender (Postfix: ${sender}).")
@pass_app
def ingest(app: App, file_: Path | None, recipients: tuple[str, ...], sender: str | None) -> None:
    """Take one mail from standard input (an MTA's pipe transport).

    Prints {"action", "ticket", "reason"} as JSON; action is created,
    appended, reopened, followup (with "followup_of"), duplicate, ignored
    (reason auto_reply, bounce, receipt, loop, rate_limited or blocked) or
    rejected. Exit 0 when the mail was taken (whatever the action), 75 when
    it must be retried later, 65 when the input is not a mail at all (its
    bytes are still kept).
    """
    from maildesk.accept.spool import Incoming
    from maildesk.process.service import Ingestor
    from maildesk.secret import shared_secret_problem

    raw = file_.read_bytes() if file_ else sys.stdin.buffer.read()
    try:
        engine = app.ready_engine()
        problem = shared_secret_problem(app.settings, app.config_source)
        if problem:  # a config error: keep the mail queued at the MTA, not bounced
            fail(f"{problem}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
        ingestor = Ingestor(app.settings, engine)
        outcome = ingestor.ingest(Incoming(raw, "pipe", sender, recipients))
    except ConfigError as exc:
        fail(f"{exc}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
    except db.SchemaError as exc:
        fail(f"{exc}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
    except (db.StoreUnavailable, SQLAlchemyError, OSError) as exc:
        fail(f"store unavailable, mail not taken (the MTA will retry): "
             f"{getattr(exc, 'orig', None) or exc}", EX_TEMPFAIL)
    click.echo(json.dumps(outcome.as_dict(), ensure_ascii=False))
    from maildesk.deliver.broker import hand_over

    hand_over(app.settings, outcome.outbox_ids)
    if outcome.not_a_mail:
        sys.exit(EX_DATAERR)
    if outcome.action == "failed":
        # Stored but not processed: a retry processes it (the store keeps it).
        sys.exit(EX_TEMPFAIL)


@main.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--batch", default=100, show_default=True,
              help="Mails per commit (each mail still counts only once it is committed).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when standard error is a terminal).")
@pass_app
@handles_errors
def import_(app: App, path: Path, batch: int, as_json: bool, progress: bool | None) -> None:
    """Import an mbox file or a Maildir (migration). Safe to re-run:
    mails already taken report as duplicates."""
    from maildesk.accept.mailbox import import_mailbox
    from maildesk.process.service import Ingestor

    ingestor = Ingestor(app.settings, app.ready_engine())
    try:
        summary = import_mailbox(ingestor.ingest_batch, path, batch, progress)
    except ValueError as exc:
        fail(str(exc), EX_NOINPUT)
    if as_json:
        emit_json(summary.as_dict())
    else:
        click.echo(summary.describe())
    if summary.errors:
        sys.exit(EX_DATAERR)


@main.group("tickets")
def tickets_group() -> None:
    """List and read tickets."""


@tickets_group.command("list")
@click.option("--status", type=click.Choice(views.STATUSES), default=None)
@click.option("--search", default=None, help="Text in subject, body or sender; or a number.")
@click.option("--sla", type=click.Choice(["green", "yellow", "red"]), default=None,
              help="Only tickets still being worked on with this SLA light.")
@click.option("--overdue", is_flag=True, help="Only tickets past an SLA limit (red).")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON with stable keys, ISO 8601 times.")
@pass_app
@handles_errors
def tickets_list(
    app: App, status: str | None, search: str | None, sla: str | None, overdue: bool,
    limit: int, as_json: bool,
) -> None:
    """Tickets, newest first, with their SLA light (green/yellow/red)."""
    with db.session_scope(app.ready_engine()) as session:
        rows = views.ticket_list(session, app.settings, status, search, limit, sla, overdue)
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

    try:
        return func()
    except ActionError as exc:
        fail(str(exc), 1)


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


@tickets_group.command("reply")
@click.argument("number")
@click.option("--agent", "agent", required=True, help="The agent's address (from the config).")
@click.option("--solve", is_flag=True, help="This is the solution: the ticket becomes solved.")
@_with_text
@pass_app
@handles_errors
def tickets_reply(app: App, number: str, agent: str, solve: bool, text: str | None,
                  text_file: Path | None) -> None:
    """Answer the customer (a public reply; a new ticket becomes open).

    The reply is stored with its Message-ID, reply address and body
    reference, so that the customer's answer threads onto the ticket.
    """
    from maildesk.actions import agent as agent_actions

    body = sys.stdin.read() if text_file == Path("-") else _text(text, text_file)
    result = _run_action(lambda: agent_actions.reply(
        app.ready_engine(), app.settings, _number(number), agent, body, solve=solve,
        dispatch=app.hand_over))
    click.echo(f"#{result.number}: reply stored as {result.message_id}, status {result.status}")


@tickets_group.command("note")
@click.argument("number")
@click.option("--agent", "agent", required=True, help="The agent's address (from the config).")
@_with_text
@pass_app
@handles_errors
def tickets_note(app: App, number: str, agent: str, text: str | None,
                 text_file: Path | None) -> None:
    """Add an internal note (never sent to the customer)."""
    from maildesk.actions import agent as agent_actions

    body = sys.stdin.read() if text_file == Path("-") else _text(text, text_file)
    _run_action(lambda: agent_actions.note(
        app.ready_engine(), app.settings, _number(number), agent, body))
    click.echo(f"#{_number(number)}: note added")


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
@click.option("--agent", "actor", default=None,
              help="Who makes the change (default: cli:<user>), for the history.")
@pass_app
@handles_errors
def tickets_set(app: App, number: str, status: str | None, priority: str | None,
                request_type: str | None, assign: str | None, group: str | None,
                planned_version: str | None, dev_item: str | None, actor: str | None) -> None:
    """Change status, priority, request type, assignee, group, or link the
    ticket to a development item and planned version."""
    from maildesk.actions import agent as agent_actions

    if not any(v is not None for v in (status, priority, request_type, assign, group,
                                       planned_version, dev_item)):
        fail("nothing to set: give --status, --priority, --type, --assign, --group, "
             "--planned-version or --dev-item", 2)
    changes = _run_action(lambda: agent_actions.set_fields(
        app.ready_engine(), app.settings, _number(number), actor or agent_actions.cli_actor(),
        status=status, priority=priority, request_type=request_type, assign=assign,
        group=group, planned_version=planned_version, dev_item=dev_item,
        dispatch=app.hand_over,
    ))
    click.echo("\n".join(f"#{_number(number)} {c}" for c in changes) or "nothing changed")


@main.command("serve")
@pass_app
@handles_errors
def serve_command(app: App) -> None:
    """Run the daemon: SMTP/LMTP listeners, IMAP pollers, the drainer.

    Mail accepted but not yet processed (e.g. after a crash) is processed
    at start. SIGTERM/SIGINT stop it gracefully (serve.grace_seconds).
    """
    from maildesk.daemon import serve

    app.require_shared_secret()
    engine = app.ready_engine()
    with db.session_scope(engine) as session:
        store.sync_directory(session, app.settings)
    try:
        code = serve(app.settings, engine)
    except OSError as exc:
        fail(f"cannot start listeners: {exc} (is another maildesk or program using the port? "
             f"see [smtp]/[lmtp] in the config)", 71)
    sys.exit(code)


@main.command("check")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def check_command(app: App, as_json: bool) -> None:
    """Validate the config and try every connection it names (database,
    data dir, listener ports, IMAP logins). Exit 1 on any failure."""
    from maildesk.cli.check import CheckResult, run_checks

    try:
        settings = app.settings
    except ConfigError as exc:
        results = [CheckResult("config", False, str(exc))]
    else:
        results = [CheckResult("config", True, f"{app.config_source} is valid"),
                   *run_checks(settings, app.config_source)]
    if as_json:
        emit_json([r.__dict__ for r in results])
    else:
        for r in results:
            click.echo(f"{'OK  ' if r.ok else 'FAIL'}  {r.name}: {r.detail}")
    sys.exit(0 if all(r.ok for r in results) else 1)


@main.command("sweep")
@click.option("--now", "now_text", default=None,
              help="Pretend it is this time (ISO 8601, e.g. 2026-12-01T09:00:00+01:00).")
@click.option("--dry-run", is_flag=True, help="Only print what is due; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def sweep_command(app: App, now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Apply the time-based rules once: reminders, closing after reminder 2,
    closing solved tickets. Safe beside a running serve (each ticket is
    claimed once)."""
    from datetime import UTC, datetime

    from maildesk.deliver.broker import hand_over
    from maildesk.schedule.sweep import run_sweep
    from maildesk.secret import load_secret

    now = datetime.now(UTC)
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            fail(f"--now {now_text!r} is not an ISO 8601 time", 2)
        if now.tzinfo is None:
            fail("--now needs a time zone offset (e.g. +01:00 or Z)", 2)
    try:
        report = run_sweep(app.ready_engine(), app.settings, load_secret(app.settings), now,
                           dry_run)
    except ValueError as exc:  # a calendar setting the holidays package does not know
        fail(str(exc), EX_CONFIG)
    if not dry_run:
        hand_over(app.settings, report.outbox_ids)
    if as_json:
        emit_json(report.as_dict())
        return
    verb = "would do" if dry_run else "did"
    if not report.actions:
        click.echo(f"sweep at {now.isoformat()}: nothing due")
    for action in report.actions:
        click.echo(f"#{action['ticket']}: {action['action']}")
    if report.actions:
        click.echo(f"sweep at {now.isoformat()} {verb}: " + ", ".join(
            f"{n} {a}" for a, n in sorted(report.counts().items())))


@main.group("release")
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
        click.echo(f"version {version}: {len(result.tickets)} tickets "
                   f"({', '.join(f'#{n}' for n in result.tickets) or 'none waiting'})")


@main.group("report")
def report_group() -> None:
    """Reports over tickets and ratings."""


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r} is not a date (YYYY-MM-DD)", 2)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@report_group.command("csat")
@click.option("--since", "since_text", default=None, metavar="DATE",
              help="Only ratings given on or after this day (YYYY-MM-DD, UTC).")
@click.option("--by", type=click.Choice(["agent", "group", "type"]), default=None,
              help="One line per agent (assignee when rated), group or request type.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def report_csat(app: App, since_text: str | None, by: str | None, as_json: bool) -> None:
    """Customer satisfaction: ratings, average (1-5) and CSAT (share of
    "zufrieden"/"sehr zufrieden" answers)."""
    from maildesk.actions import customer as customer_actions
    from maildesk.tickets import csat

    rows = customer_actions.csat_rows(app.ready_engine(), _since(since_text))
    buckets = csat.summarize(rows, by)
    if as_json:
        emit_json({"since": since_text, "by": by, "total": len(rows), "groups": buckets})
        return
    heads = [(by or "scope").upper(), "RATINGS", "AVERAGE", "CSAT %",
             *[name.replace("_", " ").upper() for name in csat.SCALE], "WITH REASON"]
    click.echo(views.table(
        heads,
        [[b["key"], str(b["ratings"]), f"{b['average']:.2f}", f"{b['csat']:.1f}",
          *[str(b["counts"][name]) for name in csat.SCALE], str(b["with_reason"])]
         for b in buckets],
        "no ratings" + (f" since {since_text}" if since_text else "")))


@main.group("customers")
def customers_group() -> None:
    """Customers: language and address confirmation."""


@customers_group.command("list")
@click.option("--unconfirmed", is_flag=True, help="Only customers who did not confirm yet.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def customers_list(app: App, unconfirmed: bool, limit: int, as_json: bool) -> None:
    """Customers, newest first."""
    with db.session_scope(app.ready_engine()) as session:
        rows = views.customer_list(session, unconfirmed, limit)
    if as_json:
        emit_json(rows)
        return
    click.echo(views.table(
        ["EMAIL", "NAME", "LANGUAGE", "CONFIRMED", "BOUNCING", "CREATED"],
        [[r["email"], r["name"], r["language"], "yes" if r["confirmed"] else "no",
          "yes" if r["bouncing"] else "no", (r["created_at"] or "")[:19]] for r in rows],
        "no customers"))


@customers_group.command("set")
@click.argument("email")
@click.option("--language", type=click.Choice(["de", "en"]), default=None,
              help="Language of the customer's mails and pages.")
@click.option("--confirmed/--unconfirmed", default=None,
              help="Mark the address confirmed (e.g. confirmed by phone) or not.")
@pass_app
@handles_errors
def customers_set(app: App, email: str, language: str | None, confirmed: bool | None) -> None:
    """Change a customer's language or confirmation state."""
    if language is None and confirmed is None:
        fail("nothing to change: give --language and/or --confirmed/--unconfirmed", 2)
    with db.session_scope(app.ready_engine()) as session:
        found = views.set_customer(session, email, language, confirmed)
    if not found:
        fail(f"no customer {email}", 1)
    click.echo(f"{email.lower()}: updated")


#: Mails one replay transaction covers.
REPLAY_BATCH = 50


@main.command("replay")
@click.argument("inbound_ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True,
              help="Every mail parked as failed (e.g. after a code upgrade that fixes the cause).")
@pass_app
@handles_errors
def replay(app: App, inbound_ids: tuple[int, ...], all_failed: bool) -> None:
    """Process accepted mails again (failed or still pending), e.g. after
    fixing what made them fail. Prints one JSON line per mail."""
    from maildesk.process.service import Ingestor

    engine = app.ready_engine()
    ids = list(inbound_ids)
    if all_failed:
        with Session(engine) as session:
            parked = store.list_inbound(session, state="failed", limit=None)
            ids += [row.id for row in reversed(parked) if row.id is not None and row.id not in ids]
    if not ids:
        if all_failed:
            click.echo("no failed mails", err=True)
            return
        fail("name inbound ids to replay, or --all-failed", EX_USAGE)
    ingestor = Ingestor(app.settings, engine)
    code = 0
    with click.progressbar(length=len(ids), label="replaying", file=sys.stderr,
                           hidden=len(ids) < 50) as bar:
        for start in range(0, len(ids), REPLAY_BATCH):
            chunk = ids[start:start + REPLAY_BATCH]
            outcomes = ingestor.process(chunk, states=("failed", "pending"))
            for inbound_id in chunk:
                outcome = outcomes[inbound_id]
                data = {"inbound": inbound_id, **outcome.as_dict()}
                if outcome.skipped:
                    data["note"] = "not failed or pending: nothing done"
                click.echo(json.dumps(data, ensure_ascii=False))
                if outcome.action == "failed":
                    code = 1
            bar.update(len(chunk))
    sys.exit(code)


@main.command("worker")
@pass_app
@handles_errors
def worker_command(app: App) -> None:
    """Run the Dramatiq worker that sends notifications (broker.url must
    name Redis; with the embedded broker, `serve` sends them itself)."""
    from maildesk.deliver.runner import run_worker_processes

    if not app.settings.broker.url:
        fail("broker.url is empty (embedded broker): `maildesk serve` sends the mails "
             "itself; set broker.url to a redis:// URL to run separate workers", EX_CONFIG)
    app.require_shared_secret()
    sys.exit(run_worker_processes(app.settings, app.ready_engine()))


@main.group("outbox")
def outbox_group() -> None:
    """Notifications: queued, sent, failed."""


@outbox_group.command("list")
@click.option("--state", type=click.Choice(["queued", "sending", "sent", "failed"]))
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def outbox_list(app: App, state: str | None, limit: int, as_json: bool) -> None:
    """Outgoing mails, newest first."""
    from maildesk.tickets import outbox

    with db.session_scope(app.ready_engine()) as session:
        rows = outbox.list_rows(session, state, limit)
    if as_json:
        emit_json(rows)
        return
    click.echo(views.table(
        ["ID", "TICKET", "KIND", "STATE", "TRIES", "TO", "ERROR"],
        [[str(r["id"]), f"#{r['ticket']}", r["kind"], r["state"], str(r["attempts"]),
          ", ".join(r["to"]), (r["last_error"] or "")[:60]] for r in rows],
        "no notifications"))


@outbox_group.command("retry")
@click.argument("outbox_ids", nargs=-1, type=int, required=True)
@pass_app
@handles_errors
def outbox_retry(app: App, outbox_ids: tuple[int, ...]) -> None:
    """Queue failed notifications again (a sent one is never sent twice)."""
    from maildesk.deliver.broker import hand_over
    from maildesk.tickets import outbox

    requeued, code = [], 0
    with db.session_scope(app.ready_engine()) as session:
        for outbox_id in outbox_ids:
            state = outbox.retry(session, outbox_id)
            if state is None:
                click.echo(f"{outbox_id}: no such notification", err=True)
                code = 1
            elif state == "sent":
                click.echo(f"{outbox_id}: already sent; not sent again", err=True)
                code = 1
            else:
                requeued.append(outbox_id)
                click.echo(f"{outbox_id}: {state} -> queued")
    hand_over(app.settings, requeued)
    sys.exit(code)


@main.group("held")
def held_group() -> None:
    """Mails that became no ticket (auto-replies, bounces, list mail, rate
    limit, blocked, unverified agent mail, DMARC failures): recover or delete."""


@held_group.command("list")
@click.option("--reason", default=None,
              help="e.g. auto_reply, bounce, loop, rate_limited, unverified_agent, dmarc_fail")
@click.option("--state", type=click.Choice(["held", "recovered", "deleted", "purged", "all"]),
              default="held", show_default=True)
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def held_list(app: App, reason: str | None, state: str, limit: int, as_json: bool) -> None:
    """Held mails, newest first; the id is the inbound id (`inbound raw ID`)."""
    from maildesk.actions import held

    rows = held.list_held(app.ready_engine(), reason=reason,
                          state=None if state == "all" else state, limit=limit)
    if as_json:
        emit_json(rows)
    else:
        click.echo(views.held_table(rows))


def _held_targets(app: App, ids: tuple[int, ...], all_held: bool, reason: str | None) -> list[int]:
    from maildesk.actions import held

    if all_held:
        return sorted(set(ids) | set(held.held_ids(app.ready_engine(), reason)))
    if reason:
        fail("--reason selects only together with --all", EX_USAGE)
    if not ids:
        fail("name held mail ids, or --all [--reason R]", EX_USAGE)
    return list(dict.fromkeys(ids))


def _actor(by: str | None) -> str:
    import getpass

    return by or f"cli:{getpass.getuser()}"


@held_group.command("recover")
@click.argument("inbound_ids", nargs=-1, type=int)
@click.option("--all", "all_held", is_flag=True,
              help="Every mail still held (with --reason: held for that reason).")
@click.option("--reason", default=None)
@click.option("--by", default=None, help="Who recovers (for the history); default cli:<user>.")
@pass_app
@handles_errors
def held_recover(app: App, inbound_ids: tuple[int, ...], all_held: bool, reason: str | None,
                 by: str | None) -> None:
    """Make held mails tickets (or land them on their ticket) as if they had
    been accepted, with notifications. Prints one JSON line per mail."""
    from maildesk.deliver.broker import hand_over
    from maildesk.process.service import Ingestor

    ids = _held_targets(app, inbound_ids, all_held, reason)
    ingestor = Ingestor(app.settings, app.ready_engine())
    code = 0
    with click.progressbar(ids, label="recovering", file=sys.stderr,
                           hidden=len(ids) < 50) as bar:
        for inbound_id in bar:
            outcome = ingestor.recover(inbound_id, _actor(by))
            hand_over(app.settings, outcome.outbox_ids)
            click.echo(json.dumps({"held": inbound_id, **outcome.as_dict()}, ensure_ascii=False))
            code = code or int(outcome.action == "failed")
    sys.exit(code)


@held_group.command("delete")
@click.argument("inbound_ids", nargs=-1, type=int)
@click.option("--all", "all_held", is_flag=True,
              help="Every mail still held (with --reason: held for that reason).")
@click.option("--reason", default=None)
@click.option("--by", default=None, help="Who deletes (for the record); default cli:<user>.")
@pass_app
@handles_errors
def held_delete(app: App, inbound_ids: tuple[int, ...], all_held: bool, reason: str | None,
                by: str | None) -> None:
    """Discard held mails (their raw bytes too). The inbound row stays, so
    a redelivery is still a duplicate."""
    from maildesk.actions import held

    ids = _held_targets(app, inbound_ids, all_held, reason)
    results = held.delete_held(app.ready_engine(), ids, _actor(by))
    for result in results:
        click.echo(json.dumps({"held": result.inbound_id, "deleted": result.ok,
                               "reason": None if result.ok else result.message}))
    sys.exit(0 if all(r.ok for r in results) else 1)


@main.group("inbound")
def inbound_group() -> None:
    """Accepted mails and what became of them (rejected, ignored, failed)."""


@inbound_group.command("list")
@click.option("--state", type=click.Choice(["pending", "done", "failed"]), default=None)
@click.option("--outcome", type=click.Choice(views.OUTCOMES), default=None)
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def inbound_list(
    app: App, state: str | None, outcome: str | None, limit: int, as_json: bool
) -> None:
    """Inbound mails, newest first."""
    with db.session_scope(app.ready_engine()) as session:
        rows = views.inbound_list(session, state, outcome, limit)
    if as_json:
        emit_json(rows)
    else:
        click.echo(views.inbound_table(rows))


@inbound_group.command("raw")
@click.argument("inbound_id", type=int)
@pass_app
@handles_errors
def inbound_raw(app: App, inbound_id: int) -> None:
    """Write the raw bytes of an inbound mail to standard output."""
    with db.session_scope(app.ready_engine()) as session:
        data = store.raw_bytes(session, inbound_id)
        exists = views.inbound_exists(session, inbound_id)
        kept = store.has_raw(session, inbound_id)
    if not exists:
        fail(f"no inbound mail {inbound_id}", 1)
    if not kept:
        fail(f"inbound mail {inbound_id}: its raw bytes were deleted (held mail deleted, or "
             "purged after held.keep_days; `maildesk held list --state all`)", 1)
    sys.stdout.buffer.write(data)
