"""`maildesk report`: tickets by channel, category, request type, status,
agent or group and period; satisfaction ratings with their reasons; first
response and resolution times against the SLA. `--json` prints what the
HTTP API's /api/v1/reports/… answer (tickets/reports.py writes both)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import click

from maildesk import db, views
from maildesk.cli.common import App, F, emit_json, fail, handles_errors, pass_app
from maildesk.tickets import reports
from maildesk.tickets.csat import SCALE, RatingRow


@click.group("report")
def report_group() -> None:
    """Reports over tickets and ratings."""


def _range_options(func: F) -> F:
    for option in reversed((
        click.option("--period", type=click.Choice(reports.PERIODS), default=None,
                     help="One line per UTC day, ISO week or month."),
        click.option("--from", "from_text", default=None, metavar="DATE",
                     help="First day, included (YYYY-MM-DD, UTC)."),
        click.option("--until", "until_text", default=None, metavar="DATE",
                     help="Last day, included (YYYY-MM-DD, UTC)."),
        click.option("--json", "as_json", is_flag=True,
                     help="JSON: the keys of the API's /api/v1/reports/…"),
    )):
        func = option(func)
    return func


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return reports.parse_day(text, option)
    except reports.InvalidReport as exc:
        fail(f"--{exc.field} {text!r} is not a date (YYYY-MM-DD)", 2)
    raise AssertionError("unreachable")


def _span(from_text: str | None, until_text: str | None, period: str | None,
          since_text: str | None = None) -> reports.Span:
    if since_text is not None and from_text is not None:
        fail("give --since or --from (the same), not both", 2)
    start = _day(since_text, "since") if since_text is not None else _day(from_text, "from")
    try:
        return reports.span(start, _day(until_text, "until"), period, datetime.now(UTC).date())
    except reports.InvalidReport as exc:
        fail(f"--{exc.field}: {exc.message}", 2)
    raise AssertionError("unreachable")


def _tickets(app: App, within: reports.Span) -> list[reports.TicketRow]:
    from maildesk.store import reports as store_reports

    with db.session_scope(app.ready_engine()) as session:
        rows = store_reports.ticket_rows(session, *within.bounds())
    return [reports.TicketRow(**row) for row in rows]


def _columns(data: dict[str, Any],
             cells: Callable[[dict[str, Any]], list[str]]) -> tuple[list[str], list[list[str]]]:
    """The key column (and the period's, when by period) before `cells`."""
    heads = [(data["by"] or "scope").upper()]
    rows = [[g["key"], *cells(g)] for g in data["groups"]]
    if data["period"]:
        heads.insert(0, data["period"].upper())
        rows = [[g["period"], *row] for g, row in zip(data["groups"], rows, strict=True)]
    return heads, rows


def _empty(what: str, data: dict[str, Any]) -> str:
    window = [f"{word} {data[key]}" for word, key in (("from", "from"), ("until", "until"))
              if data[key]]
    return f"no {what}" + (" " + " ".join(window) if window else "")


@report_group.command("tickets")
@click.option("--by", type=click.Choice(reports.DIMENSIONS), default=None,
              help="One line per channel, category, request type, status, agent or group.")
@_range_options
@pass_app
@handles_errors
def report_tickets(app: App, by: str | None, period: str | None, from_text: str | None,
                   until_text: str | None, as_json: bool) -> None:
    """Tickets created, counted per period and channel, category, type or
    status (the status they have now)."""
    within = _span(from_text, until_text, period)
    data = reports.tickets_report(_tickets(app, within), by, period, within)
    if as_json:
        emit_json(data)
        return
    heads, rows = _columns(data, lambda g: [str(g["tickets"])])
    click.echo(views.table([*heads, "TICKETS"], rows, _empty("tickets", data)))


@report_group.command("csat")
@click.option("--since", "since_text", default=None, metavar="DATE",
              help="Only ratings given on or after this day (YYYY-MM-DD, UTC); as --from.")
@click.option("--by", type=click.Choice(reports.CSAT_DIMENSIONS), default=None,
              help="One line per agent (assignee when rated), group or request type.")
@click.option("--reasons", is_flag=True, help="List the reasons given under the table.")
@_range_options
@pass_app
@handles_errors
def report_csat(app: App, since_text: str | None, by: str | None, reasons: bool,
                period: str | None, from_text: str | None, until_text: str | None,
                as_json: bool) -> None:
    """Customer satisfaction: ratings, average (1-5) and CSAT (share of
    "zufrieden"/"sehr zufrieden" answers), with the reasons given."""
    from maildesk.store import reports as store_reports

    within = _span(from_text, until_text, period, since_text)
    with db.session_scope(app.ready_engine()) as session:
        rows = store_reports.rating_rows(session, *within.bounds())
    data = reports.csat_report([RatingRow(**row) for row in rows], by, period, within)
    if as_json:
        emit_json({"since": since_text, **data})
        return
    heads, table_rows = _columns(data, lambda b: [
        str(b["ratings"]), f"{b['average']:.2f}", f"{b['csat']:.1f}",
        *[str(b["counts"][name]) for name in SCALE], str(b["with_reason"])])
    heads += ["RATINGS", "AVERAGE", "CSAT %",
              *[name.replace("_", " ").upper() for name in SCALE], "WITH REASON"]
    empty = ("no ratings" + (f" since {since_text}" if since_text else "")
             if since_text or not (from_text or until_text) else _empty("ratings", data))
    click.echo(views.table(heads, table_rows, empty))
    if reasons:
        for group in data["groups"]:
            if not group["reasons"]:
                continue
            click.echo(f"\n{group['key']}" + (f", {group['period']}" if group["period"] else ""))
            for given in group["reasons"]:
                first, *more = given["reason"].splitlines() or [""]
                click.echo(f"  #{given['ticket']}  {given['score']} ({given['rating']})  "
                           f"{(given['rated_at'] or '')[:10]}  {first}" + (" …" if more else ""))


def _times(measure: dict[str, Any]) -> list[str]:
    def hours(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return [f"{hours(measure['median_hours'])}/{hours(measure['p90_hours'])}",
            f"{measure['met']}/{measure['breached']}/{measure['open']}",
            "-" if measure["met_pct"] is None else f"{measure['met_pct']:.1f}"]


@report_group.command("sla")
@click.option("--by", type=click.Choice(reports.DIMENSIONS), default=None,
              help="One line per channel, category, request type, status, agent or group.")
@_range_options
@pass_app
@handles_errors
def report_sla(app: App, by: str | None, period: str | None, from_text: str | None,
               until_text: str | None, as_json: bool) -> None:
    """First-response and resolution times in business hours (median and
    90th percentile) and how many met or breached their SLA target."""
    from maildesk.schedule.calendar import BusinessCalendar
    from maildesk.schedule.sla import light

    within = _span(from_text, until_text, period)
    settings = app.settings
    measure = partial(light, settings=settings.sla,
                      calendar=BusinessCalendar.from_settings(settings.calendar))
    data = reports.sla_report(_tickets(app, within), by, period, within, datetime.now(UTC),
                              measure, settings.sla)
    if as_json:
        emit_json(data)
        return
    heads, rows = _columns(data, lambda g: [
        str(g["tickets"]), *_times(g["first_response"]), *_times(g["resolution"])])
    heads += ["TICKETS", "RESPONSE MEDIAN/P90 H", "MET/BREACHED/OPEN", "MET %",
              "RESOLUTION MEDIAN/P90 H", "MET/BREACHED/OPEN", "MET %"]
    click.echo(views.table(heads, rows, _empty("tickets", data)))
    click.echo("\ntargets (business hours, first response/resolution): " + ", ".join(
        f"{kind} {_number(t['first_response_hours'])}/{_number(t['resolution_hours'])}"
        for kind, t in data["targets"].items()))


def _number(value: float) -> str:
    return f"{value:g}"


#: What app.py adds to the `maildesk` group.
COMMANDS = [report_group]
