"""Notifications through the API: list them (any agent), queue a failed
one again (admin) — what `maildesk outbox list|retry` does. A sent
notification is never sent twice: retrying one is a 409."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from maildesk.db import session_scope
from maildesk.tickets import outbox
from maildesk.web.api import schemas
from maildesk.web.api.auth import API, require_admin
from maildesk.web.api.problems import Problem
from maildesk.web.api.routes import Route
from maildesk.web.api.wire import json_response, parse_query


async def list_outbox(request: web.Request) -> web.Response:
    query: schemas.OutboxQuery = parse_query(request, schemas.OutboxQuery)
    state = request.app[API]

    def read() -> list[dict[str, Any]]:
        with session_scope(state.engine) as session:
            return outbox.list_rows(session, query.state, query.limit)

    return json_response(schemas.OutboxPage, {"items": await asyncio.to_thread(read)})


async def retry(request: web.Request) -> web.Response:
    require_admin(request)
    raw = request.match_info["outbox_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(422, "invalid-parameter", "outbox_id: a notification's id",
                      field="outbox_id")
    outbox_id = int(raw)
    state = request.app[API]

    def write() -> str | None:
        with session_scope(state.engine) as session:
            return outbox.retry(session, outbox_id)

    was = await asyncio.to_thread(write)
    if was is None:
        raise Problem(404, "notification-not-found", f"no notification {outbox_id}")
    if was == "sent":
        raise Problem(409, "already-sent", f"notification {outbox_id} was sent; never twice")
    state.dispatch([outbox_id])
    return json_response(schemas.Requeued, {"id": outbox_id, "was": was})


ROUTES = (
    Route("GET", "/outbox", list_outbox, "Notifications, newest first", schemas.OutboxPage,
          query=schemas.OutboxQuery, errors=(401, 422, 429)),
    Route("POST", "/outbox/{outbox_id}/retry", retry,
          "Queue a failed notification again (admin)", schemas.Requeued,
          errors=(401, 403, 404, 409, 422, 429)),
)
