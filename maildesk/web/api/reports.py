"""Report routes (SPEC §7, §9): tickets by channel, category, request type,
status, agent or group and period; satisfaction by agent, group or request
type and period, with the reasons given; first-response and resolution
times against the SLA. Any agent's token reads them; what they answer is
what `maildesk report tickets|csat|sla --json` prints (tickets/reports.py
writes both).

`from` and `until` are whole UTC days, both included. `from` after
`until`, or a daily report over more than three years, is a 422 naming
`from`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from maildesk.db import session_scope
from maildesk.schedule.calendar import BusinessCalendar
from maildesk.schedule.sla import light
from maildesk.store import reports as store_reports
from maildesk.tickets import reports
from maildesk.tickets.csat import RatingRow
from maildesk.web.api import report_schemas as schemas
from maildesk.web.api.auth import API, ApiState
from maildesk.web.api.problems import Problem
from maildesk.web.api.routes import Route
from maildesk.web.api.wire import json_response, parse_query

ERRORS = (401, 422, 429)


def _span(query: Any) -> reports.Span:
    try:
        return reports.span(
            reports.parse_day(query.from_, "from") if query.from_ else None,
            reports.parse_day(query.until, "until") if query.until else None,
            query.period, datetime.now(UTC).date())
    except reports.InvalidReport as exc:
        raise Problem(422, "invalid-parameter", str(exc), field=exc.field) from None


def _tickets(state: ApiState, within: reports.Span) -> list[reports.TicketRow]:
    with session_scope(state.engine) as session:
        rows = store_reports.ticket_rows(session, *within.bounds())
    return [reports.TicketRow(**row) for row in rows]


async def ticket_report(request: web.Request) -> web.Response:
    query: schemas.TicketReportQuery = parse_query(request, schemas.TicketReportQuery)
    within, state = _span(query), request.app[API]

    def read() -> dict[str, Any]:
        return reports.tickets_report(_tickets(state, within), query.by, query.period, within)

    return json_response(schemas.TicketReport, await asyncio.to_thread(read))


async def csat_report(request: web.Request) -> web.Response:
    query: schemas.CsatReportQuery = parse_query(request, schemas.CsatReportQuery)
    within, state = _span(query), request.app[API]

    def read() -> dict[str, Any]:
        with session_scope(state.engine) as session:
            rows = store_reports.rating_rows(session, *within.bounds())
        return reports.csat_report([RatingRow(**row) for row in rows], query.by,
                                   query.period, within)

    return json_response(schemas.CsatReport, await asyncio.to_thread(read))


async def sla_report(request: web.Request) -> web.Response:
    query: schemas.TicketReportQuery = parse_query(request, schemas.TicketReportQuery)
    within, state = _span(query), request.app[API]

    def read() -> dict[str, Any]:
        settings = state.settings
        measure = partial(light, settings=settings.sla,
                          calendar=BusinessCalendar.from_settings(settings.calendar))
        return reports.sla_report(_tickets(state, within), query.by, query.period, within,
                                  datetime.now(UTC), measure, settings.sla)

    return json_response(schemas.SlaReport, await asyncio.to_thread(read))


ROUTES = (
    Route("GET", "/reports/tickets", ticket_report,
          "Tickets created, by channel, category, request type, status, agent or group "
          "and period", schemas.TicketReport, query=schemas.TicketReportQuery, errors=ERRORS),
    Route("GET", "/reports/csat", csat_report,
          "Satisfaction ratings by agent, group or request type and period, with the "
          "reasons given", schemas.CsatReport, query=schemas.CsatReportQuery, errors=ERRORS),
    Route("GET", "/reports/sla", sla_report,
          "First-response and resolution times (business hours) against the SLA targets",
          schemas.SlaReport, query=schemas.TicketReportQuery, errors=ERRORS),
)
