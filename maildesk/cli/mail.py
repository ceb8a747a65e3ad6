"""`maildesk` commands for mail itself: ingest, import, replay, inbound, held."""

from __future__ import annotations

import json
import logging
import os
import sys
from logging.handlers import MemoryHandler
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from maildesk import db, views
from maildesk.cli.common import (
    EX_DATAERR,
    EX_NOINPUT,
    EX_TEMPFAIL,
    EX_USAGE,
    App,
    emit_json,
    fail,
    handles_errors,
    pass_app,
)
from maildesk.config import ConfigError
from maildesk.store import inbound as inbound_store

#: Mails one replay transaction covers.
REPLAY_BATCH = 50


def status_line(outcome: dict[str, object]) -> str:
    """The one line `ingest` prints: Postfix's pipe transport logs the first
    line of a command's output as the delivery status, so it must say in a
    few words what became of the mail (`maildesk: created #10003`)."""
    action, ticket, reason = outcome.get("action"), outcome.get("ticket"), outcome.get("reason")
    on = f" #{ticket}" if ticket is not None else ""
    why = f" ({reason})" if reason else ""
    if action == "created":
        text = f"created{on}"
    elif action == "appended":
        text = f"added to{on}"
    elif action == "reopened":
        text = f"added to{on}, reopened"
    elif action == "followup":
        text = f"created{on} (follow-up of #{outcome.get('followup_of')})"
    elif action == "duplicate":
        text = f"duplicate, already taken{' as' + on if on else ''}"
    elif action in ("ignored", "held"):
        text = f"kept on{on} as a note{why}, held" if on else f"held{why}"
    elif action == "failed":
        text = "stored, processing failed (retried later)"
    else:
        text = f"{action}{on}{why}"
    return f"maildesk: {text}"


def data_dir_problem(path: Path) -> str | None:
    """Why this process cannot use the data dir, naming it: the pipe runs
    as its own user (Postfix's `user=`), which may not reach the directory
    a systemd unit's DynamicUser= made; without this the error would be
    SQLite's "unable to open database file", or advice to `db upgrade`."""
    import getpass

    who = f"user {getpass.getuser()} (uid {os.getuid()})"
    try:
        if not path.is_dir():
            return None  # missing: the schema check says how to create it
    except PermissionError:
        return f"cannot reach the data dir {path}: permission denied for {who}"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return (f"the data dir {path} is not writable by {who}: run ingest as the user "
                f"that owns it (config/postfix-pipe.example)")
    return None


def hold_log_lines() -> list[tuple[logging.Handler, MemoryHandler]]:
    """Keep log lines back until the status line is out: Postfix's pipe
    reads standard output and standard error as one stream and logs its
    first line as the delivery status, which must be ours, not a log line.
    (On an early exit the buffers are written at interpreter exit, after
    the error line.)"""
    root = logging.getLogger()
    pairs = [(h, MemoryHandler(100_000, flushLevel=logging.CRITICAL + 1, target=h))
             for h in root.handlers]
    root.handlers[:] = [buffer for _, buffer in pairs]
    return pairs


def kept_after_status(level: int, threshold: int) -> bool:
    """Which held-back log lines follow the status line: Postfix logs the
    whole output, joined into one line, as the status, so the INFO lines
    the status line already sums up ("inbound mail 4: created") would only
    clutter it; warnings and errors stay, and everything at log.level DEBUG."""
    return level >= logging.WARNING or threshold <= logging.DEBUG


def release_log_lines(pairs: list[tuple[logging.Handler, MemoryHandler]]) -> None:
    """The status line first, then the log lines that matter."""
    sys.stdout.flush()
    root = logging.getLogger()
    root.handlers[:] = [handler for handler, _ in pairs]
    for _, buffer in pairs:
        buffer.buffer = [r for r in buffer.buffer
                         if kept_after_status(r.levelno, root.getEffectiveLevel())]
        buffer.close()  # flushes into its target


@click.command("ingest")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the mail from this file instead of standard input.")
@click.option("--recipient", "recipients", multiple=True,
              help="Envelope recipient (Postfix: ${recipient}); routes the mail. Repeatable.")
@click.option("--sender", default=None, help="Envelope sender (Postfix: ${sender}).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"action", "ticket", "reason"} as JSON instead of the status line.')
@pass_app
def ingest(app: App, file_: Path | None, recipients: tuple[str, ...], sender: str | None,
           as_json: bool) -> None:
    """Take one mail from standard input (an MTA's pipe transport).

    Prints one status line on standard output (Postfix logs it as the
    delivery status), e.g. "maildesk: created #10003"; warnings and errors
    follow on standard error (all log lines at log.level DEBUG). With
    --json: {"action", "ticket", "reason"}, where
    action is created, appended, reopened, followup (with "followup_of"),
    duplicate, ignored (reason auto_reply, bounce, receipt, loop,
    rate_limited or blocked), held or rejected. Exit 0 when the mail was
    taken (whatever the action), 75 when it must be retried later, 65 when
    the input is not a mail at all (its bytes are still kept) or is empty
    (nothing is kept).
    """
    from maildesk.accept.spool import Incoming
    from maildesk.process.service import MailProcessor
    from maildesk.secret import shared_secret_problem

    raw = file_.read_bytes() if file_ else sys.stdin.buffer.read()
    if not raw.strip():
        # Refused before the store: empty input has no Message-ID, so the
        # dedup would call the second empty input a "duplicate" of the first.
        empty = {"action": "rejected", "ticket": None, "reason": "empty input"}
        click.echo(json.dumps(empty) if as_json else status_line(empty))
        fail("empty input: no mail on standard input (nothing stored)", EX_DATAERR)
    try:
        unusable = data_dir_problem(app.settings.data_dir)  # loads the config and logging
        held_back = hold_log_lines()
        if unusable:
            fail(f"{unusable}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
        engine = app.ready_engine()
        problem = shared_secret_problem(app.settings, app.config_source)
        if problem:  # a config error: keep the mail queued at the MTA, not bounced
            fail(f"{problem}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
        ingestor = MailProcessor(app.settings, engine)
        outcome = ingestor.ingest(Incoming(raw, "pipe", sender, recipients))
    except ConfigError as exc:
        fail(f"{exc}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
    except db.SchemaError as exc:
        fail(f"{exc}\n(mail not taken: the MTA will retry)", EX_TEMPFAIL)
    except (db.StoreUnavailable, SQLAlchemyError, OSError) as exc:
        fail(f"store unavailable, mail not taken (the MTA will retry): "
             f"{getattr(exc, 'orig', None) or exc}", EX_TEMPFAIL)
    result = outcome.as_dict()
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else status_line(result))
    release_log_lines(held_back)
    from maildesk.deliver.broker import hand_over

    hand_over(app.settings, outcome.outbox_ids)
    if outcome.not_a_mail:
        sys.exit(EX_DATAERR)
    if outcome.action == "failed":
        # Stored but not processed: a retry processes it (the store keeps it).
        sys.exit(EX_TEMPFAIL)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--batch", default=100, show_default=True,
              help="Mails per commit (each mail still counts only once it is committed).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when standard error is a terminal).")
@click.option("--verbose", is_flag=True,
              help="Also log the traceback behind each handled fallback (a mail the "
                   "parser could only partly read); the log has one line each without it.")
@pass_app
@handles_errors
def import_(app: App, path: Path, batch: int, as_json: bool, progress: bool | None,
            verbose: bool) -> None:
    """Import an mbox file or a Maildir (migration). Safe to re-run:
    mails already taken report as duplicates."""
    from maildesk.accept.mailbox import import_mailbox
    from maildesk.process.service import MailProcessor

    ingestor = MailProcessor(app.settings, app.ready_engine())
    # after the config set the log up; NOTSET: the configured level
    logging.getLogger("maildesk.mail").setLevel(logging.DEBUG if verbose else logging.NOTSET)
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


@click.command("replay")
@click.argument("inbound_ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True,
              help="Every mail parked as failed (e.g. after a code upgrade that fixes the cause).")
@pass_app
@handles_errors
def replay(app: App, inbound_ids: tuple[int, ...], all_failed: bool) -> None:
    """Process accepted mails again (failed or still pending), e.g. after
    fixing what made them fail. Prints one JSON line per mail."""
    from maildesk.process.service import MailProcessor

    engine = app.ready_engine()
    ids = list(inbound_ids)
    if all_failed:
        with Session(engine) as session:
            parked = inbound_store.list_inbound(session, state="failed", limit=None)
            ids += [row.id for row in reversed(parked) if row.id is not None and row.id not in ids]
    if not ids:
        if all_failed:
            click.echo("no failed mails", err=True)
            return
        fail("name inbound ids to replay, or --all-failed", EX_USAGE)
    ingestor = MailProcessor(app.settings, engine)
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


@click.group("held")
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
    from maildesk.process.service import MailProcessor

    ids = _held_targets(app, inbound_ids, all_held, reason)
    ingestor = MailProcessor(app.settings, app.ready_engine())
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


@click.group("inbound")
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
        data = inbound_store.raw_bytes(session, inbound_id)
        exists = views.inbound_exists(session, inbound_id)
        kept = inbound_store.has_raw(session, inbound_id)
    if not exists:
        fail(f"no inbound mail {inbound_id}", 1)
    if not kept:
        fail(f"inbound mail {inbound_id}: its raw bytes were deleted (held mail deleted, or "
             "purged after held.keep_days; `maildesk held list --state all`)", 1)
    sys.stdout.buffer.write(data)


#: What app.py adds to the `maildesk` group.
COMMANDS = [ingest, import_, replay, held_group, inbound_group]
