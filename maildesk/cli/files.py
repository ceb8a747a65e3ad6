"""`maildesk attachments get ID -o FILE`: a stored file, for the shell."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from maildesk import db
from maildesk.cli.common import App, fail, handles_errors, pass_app
from maildesk.store import blobs
from maildesk.store import files as stored


@click.group("attachments")
def attachments_group() -> None:
    """Files of tickets: customers' attachments, agents' uploads."""


@attachments_group.command("get")
@click.argument("attachment_id", type=int)
@click.option("-o", "--output", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
              help="Where to write the bytes ('-' for standard output).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_app
@handles_errors
def attachments_get(app: App, attachment_id: int, output: Path, force: bool) -> None:
    """Write an attachment's bytes (the ids are in `tickets show N --json`)."""
    with db.session_scope(app.ready_engine()) as session:
        row = stored.attachment(session, attachment_id)
    if row is None:
        fail(f"no attachment {attachment_id}", 1)
    try:
        data = blobs.read_blob(app.settings.attachments_dir, row.sha256)
    except OSError as exc:
        fail(f"attachment {attachment_id} ({row.filename}, #{row.ticket_number}): its bytes "
             f"are missing from {app.settings.attachments_dir}: {exc.strerror}", 1)
    if output == Path("-"):
        sys.stdout.buffer.write(data)
        return
    if output.exists() and not force:
        fail(f"{output} exists; give --force to overwrite it", 1)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, output)
    click.echo(f"{output}: {row.filename} ({row.content_type}, {len(data):,} bytes) of "
               f"#{row.ticket_number}", err=True)


COMMANDS = [attachments_group]
