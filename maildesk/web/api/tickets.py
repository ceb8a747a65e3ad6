"""Ticket routes: list (filters, cursor pagination, updated_since), get, and
create (a ticket without an incoming mail, actions/intake.py).

The list is newest first; its cursor is the number of the last ticket
returned, and the next page holds the tickets below it, so a page never
repeats or skips a ticket while new tickets arrive.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

from aiohttp import web

from maildesk import views
from maildesk.actions import agent as agent_actions
from maildesk.actions import intake, thirdparty, uploads
from maildesk.db import session_scope
from maildesk.store.tickets import TicketFilter
from maildesk.web.api import schemas
from maildesk.web.api.auth import API, caller
from maildesk.web.api.problems import Problem
from maildesk.web.api.routes import Route
from maildesk.web.api.wire import json_response, parse_body, parse_message, parse_query


async def list_tickets(request: web.Request) -> web.Response:
    query: schemas.TicketQuery = parse_query(request, schemas.TicketQuery)
    state = request.app[API]
    assignee = caller(request).agent_email if query.assignee == "me" else query.assignee
    wanted = TicketFilter(assignee=assignee, group=query.group,
                          organisation=query.organisation, requester=query.requester,
                          request_type=query.request_type, category=query.category,
                          channel=query.channel, support_level=query.support_level,
                          requester_kind=query.requester_kind)
    since = query.updated_since
    if since is not None and since.tzinfo is None:  # a time without offset is UTC
        since = since.replace(tzinfo=UTC)

    def read() -> list[dict[str, Any]]:
        with session_scope(state.engine) as session:
            return views.ticket_list(
                session, state.settings, query.status, query.q, query.limit + 1,
                sla=query.sla, before=int(query.cursor) if query.cursor else None,
                updated_since=since, wanted=wanted)

    rows = await asyncio.to_thread(read)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    cursor = str(rows[-1]["number"]) if more and rows else None
    return json_response(schemas.TicketPage, {"items": rows, "next_cursor": cursor})


async def get_ticket(request: web.Request) -> web.Response:
    return await _detail(request.app[API], _number(request))


async def create_ticket(request: web.Request) -> web.Response:
    body: schemas.TicketCreate = await parse_body(request, schemas.TicketCreate)
    state = request.app[API]
    who = caller(request)

    def write() -> dict[str, Any]:
        opened = intake.open_ticket(
            state.engine, state.settings, requester=body.requester.email,
            requester_name=body.requester.name, subject=body.subject, text=body.text,
            actor=who.agent_email, dispatch=state.dispatch, channel=body.channel,
            request_type=body.request_type, category=body.category,
            acknowledge=body.acknowledge, end_customer=body.end_customer)
        with session_scope(state.engine) as session:
            data = views.ticket_detail(session, state.settings, opened.number)
        assert data is not None  # committed just now
        return data

    try:
        data = await asyncio.to_thread(write)
    except intake.IntakeError as exc:
        raise Problem(422, "invalid-field", str(exc), field=exc.field) from None
    response = json_response(schemas.TicketDetail, data, status=201)
    response.headers["Location"] = f"{request.path}/{data['number']}"
    return response


def _number(request: web.Request) -> int:
    raw = request.match_info["number"]
    if not raw.isdigit() or len(raw) > 10:
        raise Problem(422, "invalid-parameter", "number: a ticket number", field="number")
    return int(raw)


async def _act(fn: Any) -> Any:
    """Run an agent action in a thread; its refusals become problems."""
    try:
        return await asyncio.to_thread(fn)
    except agent_actions.NoSuchTicket as exc:
        raise Problem(404, "ticket-not-found", str(exc)) from None
    except uploads.UploadRefused as exc:
        raise Problem(413, "file-refused", str(exc), field="files",
                      filename=exc.filename) from None
    except agent_actions.ActionError as exc:
        named = {"field": exc.field} if exc.field else {}
        raise Problem(422, "action-refused", str(exc), **named) from None


async def reply(request: web.Request) -> web.Response:
    number = _number(request)
    state, who = request.app[API], caller(request)
    body, files = await parse_message(request, schemas.ReplyCreate, state.settings)
    result = await _act(lambda: agent_actions.reply(
        state.engine, state.settings, number, who.agent_email, body.text, solve=body.solve,
        dispatch=state.dispatch, files=files))
    return json_response(schemas.Reply, {"number": result.number,
                                         "message_id": result.message_id,
                                         "reply_to": result.reply_to,
                                         "status": result.status}, status=201)


async def add_note(request: web.Request) -> web.Response:
    number = _number(request)
    state, who = request.app[API], caller(request)
    body, files = await parse_message(request, schemas.NoteCreate, state.settings)
    await _act(lambda: agent_actions.note(state.engine, state.settings, number,
                                          who.agent_email, body.text, files=files))
    return await _detail(state, number, status=201)


async def _third_party(request: web.Request, kind: str, schema: Any) -> web.Response:
    number = _number(request)
    body = await parse_body(request, schema)
    state, who = request.app[API], caller(request)
    result = await _act(lambda: thirdparty.send(
        state.engine, state.settings, number, kind, body.to, body.text,
        actor=who.agent_email, agent_email=who.agent_email, language=body.language,
        dispatch=state.dispatch))
    return json_response(schemas.ThirdPartyCreated, {
        "id": result.id, "number": result.number, "kind": result.kind, "to": result.to,
        "created_at": views.iso(result.created_at), "reply_to": result.reply_to}, status=201)


async def ask(request: web.Request) -> web.Response:
    return await _third_party(request, "ask", schemas.AskCreate)


async def forward(request: web.Request) -> web.Response:
    return await _third_party(request, "forward", schemas.ForwardCreate)


async def change(request: web.Request) -> web.Response:
    number = _number(request)
    body: schemas.TicketChange = await parse_body(request, schemas.TicketChange)
    if not body.model_fields_set:
        raise Problem(422, "nothing-to-change", "name at least one field to change")
    state, who = request.app[API], caller(request)
    # null clears the category (absent leaves it): the action's word for it
    category = ("none" if body.category is None else body.category
                ) if "category" in body.model_fields_set else None
    end_customer = ("none" if body.end_customer is None else body.end_customer
                    ) if "end_customer" in body.model_fields_set else None
    changes = await _act(lambda: agent_actions.set_fields(
        state.engine, state.settings, number, who.agent_email, status=body.status,
        priority=body.priority, request_type=body.request_type, assign=body.assignee,
        group=body.group, planned_version=body.planned_version, dev_item=body.dev_item,
        category=category, add_cc=body.add_cc or (), remove_cc=body.remove_cc or (),
        add_followers=body.add_followers or (),
        remove_followers=body.remove_followers or (),
        support_level=body.support_level, end_customer=end_customer, dispatch=state.dispatch))
    ticket = await asyncio.to_thread(_read_detail, state, number)
    return json_response(schemas.Changed, {"changes": changes, "ticket": ticket})


def _read_detail(state: Any, number: int) -> dict[str, Any] | None:
    with session_scope(state.engine) as session:
        return views.ticket_detail(session, state.settings, number)


async def _detail(state: Any, number: int, status: int = 200) -> web.Response:
    data = await asyncio.to_thread(_read_detail, state, number)
    if data is None:
        raise Problem(404, "ticket-not-found", f"no ticket #{number}")
    return json_response(schemas.TicketDetail, data, status=status)


ROUTES = (
    Route("GET", "/tickets", list_tickets, "Tickets, newest first", schemas.TicketPage,
          query=schemas.TicketQuery, errors=(401, 422, 429)),
    Route("POST", "/tickets", create_ticket,
          "Open a ticket for a customer (phone, web, an integration)", schemas.TicketDetail,
          body=schemas.TicketCreate, status=201, errors=(400, 401, 415, 422, 429)),
    Route("GET", "/tickets/{number}", get_ticket, "One ticket with its messages and history",
          schemas.TicketDetail, errors=(401, 404, 422, 429)),
    Route("PATCH", "/tickets/{number}", change,
          "Change status, priority, request type, assignee, group, planned version, "
          "category, CC and followers, support level and end customer",
          schemas.Changed, body=schemas.TicketChange, errors=(400, 401, 404, 415, 422, 429)),
    Route("POST", "/tickets/{number}/replies", reply,
          "Answer the customer (solve: the solution mail with the survey link)",
          schemas.Reply, body=schemas.ReplyCreate, status=201, uploads=True,
          errors=(400, 401, 404, 415, 422, 429)),
    Route("POST", "/tickets/{number}/notes", add_note, "An internal note (with files)",
          schemas.TicketDetail, body=schemas.NoteCreate, status=201, uploads=True,
          errors=(400, 401, 404, 415, 422, 429)),
    Route("POST", "/tickets/{number}/ask", ask,
          "Ask a third person for a statement (their answer: an internal note)",
          schemas.ThirdPartyCreated, body=schemas.AskCreate, status=201,
          errors=(400, 401, 404, 415, 422, 429)),
    Route("POST", "/tickets/{number}/forward", forward,
          "Forward the ticket to someone for information (an answer: an internal note)",
          schemas.ThirdPartyCreated, body=schemas.ForwardCreate, status=201,
          errors=(400, 401, 404, 415, 422, 429)),
)
