"""Held mail through the API (admin scope): list, recover, delete — what
`maildesk held` does, for the agents' tools."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from maildesk.actions import held as held_actions
from maildesk.process.service import MailProcessor
from maildesk.web.api import schemas
from maildesk.web.api.auth import API, require_admin
from maildesk.web.api.problems import Problem
from maildesk.web.api.routes import Route
from maildesk.web.api.wire import json_response, parse_query

ERRORS = (401, 403, 404, 422, 429)


def _held_id(request: web.Request) -> int:
    raw = request.match_info["held_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(422, "invalid-parameter", "held_id: a held mail's id", field="held_id")
    return int(raw)


async def list_held(request: web.Request) -> web.Response:
    require_admin(request)
    query: schemas.HeldQuery = parse_query(request, schemas.HeldQuery)
    state = request.app[API]
    rows = await asyncio.to_thread(held_actions.list_held, state.engine, reason=query.reason,
                                   state=query.state, limit=query.limit)
    return json_response(schemas.HeldPage, {"items": rows})


async def recover(request: web.Request) -> web.Response:
    who = require_admin(request)
    held_id = _held_id(request)
    state = request.app[API]

    def run() -> Any:
        return MailProcessor(state.settings, state.engine).recover(held_id, who.agent_email)

    outcome = await asyncio.to_thread(run)
    if outcome.action == "failed":
        raise Problem(404, "not-held", outcome.reason or f"mail {held_id} is not held")
    state.dispatch(list(outcome.outbox_ids))
    return json_response(schemas.Recovered, {"held": held_id, **outcome.as_dict()})


async def delete(request: web.Request) -> web.Response:
    who = require_admin(request)
    held_id = _held_id(request)
    state = request.app[API]
    results = await asyncio.to_thread(held_actions.delete_held, state.engine, [held_id],
                                      who.agent_email)
    if not results[0].ok:
        raise Problem(404, "not-held", results[0].message)
    return web.Response(status=204)


ROUTES = (
    Route("GET", "/held", list_held, "Mails that became no ticket, with the reason (admin)",
          schemas.HeldPage, query=schemas.HeldQuery, errors=ERRORS),
    Route("POST", "/held/{held_id}/recover", recover,
          "Make a held mail a ticket, as if accepted (admin)", schemas.Recovered,
          errors=ERRORS),
    Route("DELETE", "/held/{held_id}", delete, "Discard a held mail, raw bytes too (admin)",
          None, status=204, errors=ERRORS),
)
