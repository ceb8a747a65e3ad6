"""Customers and organisations through the API: lists with cursor and
`updated_since`, one with its history, the changes a support team makes,
and the tickets a customer may see (the portal's read, through access.py's
one rule). Roles, ticket access, membership and organisations' settings are
administrator's work (403 naming the field for an agent token)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from maildesk import access, views
from maildesk.actions import directory as directory_actions
from maildesk.db import session_scope
from maildesk.store import access as access_store
from maildesk.store import directory
from maildesk.store.tickets import TicketFilter
from maildesk.web.api import directory_schemas as schemas
from maildesk.web.api.auth import API, caller, require_admin
from maildesk.web.api.problems import Problem
from maildesk.web.api.routes import Route
from maildesk.web.api.wire import json_response, parse_body, parse_query

READ_ERRORS = (401, 422, 429)
ONE_ERRORS = (401, 404, 422, 429)
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422, 429)


def _id(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(422, "invalid-parameter", f"{name}: {what}'s id", field=name)
    return int(raw)


def _utc(since: datetime | None) -> datetime | None:
    """A time without offset is UTC."""
    return since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since


def _page(rows: list[dict[str, Any]], limit: int, key: str = "id") -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(rows[-1][key]) if more and rows else None}


async def _run(fn: Any) -> Any:
    try:
        return await asyncio.to_thread(fn)
    except directory_actions.DirectoryError as exc:
        kind = {403: "admin-scope-required", 404: "not-found", 409: "conflict"}.get(
            exc.status, "invalid-field")
        named = {"field": exc.field} if exc.field else {}
        raise Problem(exc.status, kind, str(exc), **named) from None


async def list_customers(request: web.Request) -> web.Response:
    query: schemas.CustomerQuery = parse_query(request, schemas.CustomerQuery)
    engine = request.app[API].engine
    wanted = directory.CustomerFilter(search=query.q, organisation_id=query.organisation,
                                      role=query.role, confirmed=query.confirmed,
                                      bouncing=query.bouncing, kind=query.kind)

    def read() -> list[dict[str, Any]]:
        with session_scope(engine) as session:
            return directory.list_customers(
                session, wanted, query.limit + 1,
                before=int(query.cursor) if query.cursor else None,
                updated_since=_utc(query.updated_since))

    rows = await asyncio.to_thread(read)
    return json_response(schemas.CustomerPage, _page(rows, query.limit))


def _customer_detail(engine: Any, customer_id: int) -> dict[str, Any] | None:
    with session_scope(engine) as session:
        row = directory.customer(session, customer_id)
        if row is None:
            return None
        return {**row, "events": directory.history(session, "customer", customer_id)}


async def get_customer(request: web.Request) -> web.Response:
    customer_id = _id(request, "customer_id", "a customer")
    data = await asyncio.to_thread(_customer_detail, request.app[API].engine, customer_id)
    if data is None:
        raise Problem(404, "not-found", f"no customer {customer_id}")
    return json_response(schemas.CustomerDetail, data)


async def change_customer(request: web.Request) -> web.Response:
    customer_id = _id(request, "customer_id", "a customer")
    body: schemas.CustomerChange = await parse_body(request, schemas.CustomerChange)
    wanted = body.model_dump(exclude_unset=True)
    if not wanted:
        raise Problem(422, "nothing-to-change", "name at least one field to change")
    state, who = request.app[API], caller(request)
    changed = await _run(lambda: directory_actions.change_customer(
        state.engine, customer_id, who.agent_email, wanted, admin=who.admin))
    return json_response(schemas.CustomerChanged,
                         {"changes": changed.changes, "customer": changed.row})


async def customer_tickets(request: web.Request) -> web.Response:
    customer_id = _id(request, "customer_id", "a customer")
    query: schemas.VisibleTicketsQuery = parse_query(request, schemas.VisibleTicketsQuery)
    state = request.app[API]

    def read() -> dict[str, Any] | None:
        with session_scope(state.engine) as session:
            viewer = access_store.viewer_of(session, customer_id)
            if viewer is None:
                return None
            rows = views.ticket_list(
                session, state.settings, query.status, query.q, query.limit + 1,
                before=int(query.cursor) if query.cursor else None,
                wanted=TicketFilter(visible_to=viewer))
            return {"sees": access.scope(viewer), **_page(rows, query.limit, "number")}

    data = await asyncio.to_thread(read)
    if data is None:
        raise Problem(404, "not-found", f"no customer {customer_id}")
    return json_response(schemas.VisibleTickets, data)


async def list_organisations(request: web.Request) -> web.Response:
    query: schemas.OrganisationQuery = parse_query(request, schemas.OrganisationQuery)
    engine = request.app[API].engine

    def read() -> list[dict[str, Any]]:
        with session_scope(engine) as session:
            return directory.list_organisations(
                session, query.q, query.limit + 1,
                before=int(query.cursor) if query.cursor else None,
                updated_since=_utc(query.updated_since))

    rows = await asyncio.to_thread(read)
    return json_response(schemas.OrganisationPage, _page(rows, query.limit))


def _organisation_detail(engine: Any, organisation_id: int) -> dict[str, Any] | None:
    with session_scope(engine) as session:
        row = directory.organisation(session, organisation_id)
        if row is None:
            return None
        return {**row, "events": directory.history(session, "organisation", organisation_id)}


async def get_organisation(request: web.Request) -> web.Response:
    organisation_id = _id(request, "organisation_id", "an organisation")
    data = await asyncio.to_thread(_organisation_detail, request.app[API].engine,
                                   organisation_id)
    if data is None:
        raise Problem(404, "not-found", f"no organisation {organisation_id}")
    return json_response(schemas.OrganisationDetail, data)


async def change_organisation(request: web.Request) -> web.Response:
    who = require_admin(request)
    organisation_id = _id(request, "organisation_id", "an organisation")
    body: schemas.OrganisationChange = await parse_body(request, schemas.OrganisationChange)
    if not body.model_fields_set:
        raise Problem(422, "nothing-to-change", "name at least one field to change")
    engine = request.app[API].engine
    changed = await _run(lambda: directory_actions.change_organisation(
        engine, organisation_id, who.agent_email, name=body.name,
        ticket_access=body.ticket_access, add_domains=body.add_domains,
        remove_domains=body.remove_domains))
    return json_response(schemas.OrganisationChanged,
                         {"changes": changed.changes, "organisation": changed.row})


ROUTES = (
    Route("GET", "/customers", list_customers, "Customers, newest first", schemas.CustomerPage,
          query=schemas.CustomerQuery, errors=READ_ERRORS),
    Route("GET", "/customers/{customer_id}", get_customer,
          "One customer with the history of changes", schemas.CustomerDetail,
          errors=ONE_ERRORS),
    Route("PATCH", "/customers/{customer_id}", change_customer,
          "Change a customer (role, ticket_access, organisation_id: admin)",
          schemas.CustomerChanged, body=schemas.CustomerChange, errors=WRITE_ERRORS),
    Route("GET", "/customers/{customer_id}/tickets", customer_tickets,
          "The tickets this customer may see (roles and settings, the stricter wins)",
          schemas.VisibleTickets, query=schemas.VisibleTicketsQuery, errors=ONE_ERRORS),
    Route("GET", "/organisations", list_organisations, "Organisations, newest first",
          schemas.OrganisationPage, query=schemas.OrganisationQuery, errors=READ_ERRORS),
    Route("GET", "/organisations/{organisation_id}", get_organisation,
          "One organisation with its domains and history", schemas.OrganisationDetail,
          errors=ONE_ERRORS),
    Route("PATCH", "/organisations/{organisation_id}", change_organisation,
          "Rename, set ticket access, move domains (admin)", schemas.OrganisationChanged,
          body=schemas.OrganisationChange, admin=True, errors=WRITE_ERRORS),
)
