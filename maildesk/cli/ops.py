"""`maildesk` commands for ops: db, serve, worker, check, sweep, outbox."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from maildesk import db, views
from maildesk.cli.common import (
    EX_CONFIG,
    App,
    emit_json,
    fail,
    handles_errors,
    pass_app,
)
from maildesk.config import ConfigError
from maildesk.store import tickets as store


@click.group("db")
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


@click.command("serve")
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


@click.command("check")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def check_command(app: App, as_json: bool) -> None:
    """Validate the config and try every connection it names (database,
    data dir, relay, listener ports, IMAP logins). Exit 1 on any failure;
    WARN lines (e.g. a relay not reachable yet) do not fail it. Safe beside
    a running serve: ports it holds are OK."""
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
            click.echo(f"{r.label}  {r.name}: {r.detail}")
    sys.exit(0 if all(r.ok for r in results) else 1)


#: How far ahead of the clock `sweep --now` may be without --dry-run (clock skew).
FUTURE_SLACK = timedelta(minutes=1)


@click.command("sweep")
@click.option("--now", "now_text", default=None,
              help="Pretend it is this time (ISO 8601, e.g. 2026-12-01T09:00:00+01:00); "
                   "a time in the future only with --dry-run.")
@click.option("--dry-run", is_flag=True, help="Only print what is due; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def sweep_command(app: App, now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Apply the time-based rules once: reminders, closing after reminder 2,
    closing solved tickets, SLA escalations ([sla] escalate_to). Safe beside
    a running serve (each ticket is claimed once)."""

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
        if not dry_run and now > datetime.now(UTC) + FUTURE_SLACK:
            # The mails would go out now, dated now, and tickets would close
            # before their time: only a look at the future is safe.
            fail(f"--now {now_text} is in the future: a sweep then would close tickets "
                 "and send reminders early; add --dry-run to see what would be due", 2)
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
    prefix = "dry run: " if dry_run else ""
    if not report.actions:
        click.echo(f"{prefix}sweep at {now.isoformat()}: nothing due")
    for action in report.actions:
        click.echo(f"{prefix}#{action['ticket']}: {'would do ' if dry_run else ''}"
                   f"{action['action']}" + _escalation_line(action))
    if report.actions:
        click.echo(f"{prefix}sweep at {now.isoformat()} {verb}: " + ", ".join(
            f"{n} {a}" for a, n in sorted(report.counts().items()))
            + (" (nothing changed, nothing sent)" if dry_run else ""))


def _escalation_line(action: dict[str, object]) -> str:
    """An SLA escalation's measure, time and recipients ("" for the rest)."""
    if "measure" not in action:
        return ""
    measure = str(action["measure"]).replace("_", " ")
    left = (f"{action['hours_left']} h left" if action["hours_over"] == 0
            else f"overdue by {action['hours_over']} h")
    to = ", ".join(action["to"]) if isinstance(action["to"], list) else ""
    return f" ({measure}, {left}) to {to or 'nobody'}"


@click.command("worker")
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


@click.group("outbox")
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
        [[str(r["id"]), f"#{r['ticket']}" if r["ticket"] else "-", r["kind"], r["state"],
          str(r["attempts"]),
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



@click.group("tokens")
def tokens_group() -> None:
    """API tokens of agents (the HTTP API under /api/v1/)."""


@tokens_group.command("create")
@click.option("--agent", "agent", required=True, help="The agent's address (from the config).")
@click.option("--name", default="", help="What the token is for (shown in the listing).")
@click.option("--scope", type=click.Choice(["agent", "admin"]), default="agent",
              show_default=True, help="admin: also roles, organisation settings, held mail.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def tokens_create(app: App, agent: str, name: str, scope: str, as_json: bool) -> None:
    """Create a token and print it once; only its hash is kept."""
    from maildesk.actions.tokens import TokenError, create_token

    try:
        token, row = create_token(app.ready_engine(), app.settings, agent, name, scope)
    except TokenError as exc:
        fail(str(exc), 1)
    if as_json:
        emit_json({**row, "token": token})
        return
    click.echo(token)
    click.echo(f"token {row['id']} for {row['agent']} ({row['scope']}): shown this once; "
               "use it as 'Authorization: Bearer <token>'", err=True)


@tokens_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Revoked tokens too.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def tokens_list(app: App, include_revoked: bool, as_json: bool) -> None:
    """Tokens (never the token itself: its first characters)."""
    from maildesk.actions.tokens import list_tokens

    rows = list_tokens(app.ready_engine(), include_revoked)
    if as_json:
        emit_json(rows)
        return
    click.echo(views.table(
        ["ID", "TOKEN", "AGENT", "SCOPE", "NAME", "LAST USED", "REVOKED"],
        [[str(r["id"]), r["prefix"] + "…", r["agent"], r["scope"], r["name"],
          (r["last_used_at"] or "never")[:19], (r["revoked_at"] or "")[:19]] for r in rows],
        "no tokens"))


@tokens_group.command("revoke")
@click.argument("token_ids", nargs=-1, type=int, required=True)
@pass_app
@handles_errors
def tokens_revoke(app: App, token_ids: tuple[int, ...]) -> None:
    """Revoke tokens by id: the next request with one is refused."""
    from maildesk.actions.tokens import revoke_token

    missing = []
    for token_id in token_ids:
        if revoke_token(app.ready_engine(), token_id):
            click.echo(f"token {token_id} revoked")
        else:
            missing.append(str(token_id))
    if missing:
        fail(f"no active token {', '.join(missing)}", 1)

#: What app.py adds to the `maildesk` group.
COMMANDS = [db_group, serve_command, check_command, sweep_command, worker_command,
            outbox_group, tokens_group]
