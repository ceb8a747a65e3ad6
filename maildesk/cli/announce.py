"""`maildesk announce`: a product announcement to the information
recipients (actions/announce.py), sent by the worker."""

from __future__ import annotations

from pathlib import Path

import click

from maildesk.cli.common import App, emit_json, fail, handles_errors, pass_app


@click.command("announce")
@click.option("--subject", required=True, help="The subject of the announcement.")
@click.option("--text-file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A UTF-8 text file with the announcement's text (- for stdin).")
@click.option("--language", type=click.Choice(["de", "en"]), default=None,
              help="The text's language: only information recipients of this language get "
                   "it (default: all, each in the frame of their own language).")
@click.option("--dry-run", is_flag=True,
              help="Count and list the recipients; write and send nothing.")
@click.option("--agent", "agent", default=None,
              help="The agent announcing (recorded; default: the shell user).")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@pass_app
@handles_errors
def announce_command(app: App, subject: str, text_file: Path, language: str | None,
                     dry_run: bool, agent: str | None, as_json: bool) -> None:
    """Mail an announcement to every information recipient (customers set
    --info-recipient) but those who unsubscribed, bounce or are noreply.
    Each mail carries a one-click unsubscribe link (List-Unsubscribe); the
    automatic-mail limit does not apply."""
    from maildesk.actions import announce
    from maildesk.actions.agent import ActionError

    try:
        text = (click.get_text_stream("stdin").read() if str(text_file) == "-"
                else text_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--text-file: cannot read {text_file}: {exc}", 2)
        return
    try:
        result = announce.announce(app.ready_engine(), app.settings, subject, text,
                                   language=language, actor=agent, dry_run=dry_run)
    except ActionError as exc:
        fail(str(exc), 2)
        return
    if result.outbox_ids:
        app.hand_over(list(result.outbox_ids))
    if as_json:
        emit_json({"announcement": result.announcement_id, "dry_run": dry_run,
                   "recipients": list(result.recipients),
                   "skipped": {k: list(v) for k, v in result.skipped.items()}})
        return
    verb = "would go to" if dry_run else "queued for"
    click.echo(f"announcement{'' if dry_run else f' {result.announcement_id}'} {verb} "
               f"{len(result.recipients)} recipient(s)")
    for reason, emails in result.skipped.items():
        if emails:
            click.echo(f"  skipped ({reason}): {', '.join(emails)}")
    if dry_run:
        for email in result.recipients:
            click.echo(f"  {email}")


COMMANDS = [announce_command]
