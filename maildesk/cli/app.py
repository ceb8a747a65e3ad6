"""The `maildesk` command: the click group; its commands live in
cli/mail.py, cli/tickets.py, cli/customers.py, cli/files.py, cli/reports.py
and cli/ops.py and are added here."""

from __future__ import annotations

from pathlib import Path

import click

from maildesk import __version__
from maildesk.cli import announce, customers, files, mail, ops, reports, tickets
from maildesk.cli.common import App
from maildesk.config import default_config_path


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


for _module in (mail, tickets, customers, files, reports, ops, announce):
    for _command in _module.COMMANDS:
        main.add_command(_command)
