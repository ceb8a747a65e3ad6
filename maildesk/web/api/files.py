"""Files through the API: an attachment by id (its type from its bytes, a
safe Content-Disposition) and the raw mail of an inbound message."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from maildesk.web import files
from maildesk.web.api.auth import API, caller
from maildesk.web.api.problems import Problem
from maildesk.web.api.routes import Route

log = logging.getLogger(__name__)

ERRORS = (401, 404, 422, 429)


def _id(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(422, "invalid-parameter", f"{name}: {what}", field=name)
    return int(raw)


async def get_attachment(request: web.Request) -> web.Response:
    attachment_id = _id(request, "attachment_id", "an attachment's id")
    state = request.app[API]
    try:
        download = await asyncio.to_thread(files.read_attachment, state.engine, state.settings,
                                           attachment_id)
    except files.FileMissing as exc:
        raise Problem(404, "file-missing", str(exc)) from None
    if download is None:
        raise Problem(404, "attachment-not-found", f"no attachment {attachment_id}")
    log.info("api: %s downloaded attachment %d (%s) of #%d", caller(request).agent_email,
             attachment_id, download.filename, download.ticket_number,
             extra={"ticket": download.ticket_number})
    return files.response(download)


async def get_raw_message(request: web.Request) -> web.Response:
    message_id = _id(request, "message_id", "a message's id")
    state = request.app[API]
    download = await asyncio.to_thread(files.read_raw, state.engine, message_id)
    if download is None:
        raise Problem(404, "raw-not-found",
                      f"message {message_id} is unknown or came by no mail (no raw bytes)")
    log.info("api: %s downloaded the raw mail of message %d of #%d",
             caller(request).agent_email, message_id, download.ticket_number,
             extra={"ticket": download.ticket_number})
    return files.response(download, sniff=False)


ROUTES = (
    Route("GET", "/attachments/{attachment_id}", get_attachment,
          "A stored file: its type from its own bytes, as an attachment unless an image",
          None, errors=ERRORS, binary="*/*"),
    Route("GET", "/messages/{message_id}/raw", get_raw_message,
          "The raw mail an inbound message was accepted with (.eml)", None,
          errors=ERRORS, binary="message/rfc822"),
)
