"""Stored files going out over HTTP, for the API and the signed links of
agent notices alike (issue #14).

A file is served with the content type its own bytes show (an HTML page
uploaded as `invoice.pdf` goes out as what it is, and a browser told
`nosniff` will not run it), as an attachment unless it is a raster image,
and under a sandboxing Content-Security-Policy, so that even a file opened
in the browser can run no script on maildesk's origin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.mail import filetypes
from maildesk.store import blobs
from maildesk.store import files as stored

log = logging.getLogger(__name__)

#: For a served file: no script, no plugin, no request of its own.
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


class FileMissing(Exception):
    """The row names a file whose bytes are gone from the data dir."""


@dataclass(frozen=True)
class Download:
    filename: str
    declared: str
    data: bytes
    ticket_number: int


def read_attachment(engine: Engine, settings: Settings, attachment_id: int) -> Download | None:
    """The attachment's bytes, None when there is no such attachment;
    FileMissing when the database names bytes the disk no longer has."""
    with session_scope(engine) as session:
        row = stored.attachment(session, attachment_id)
    if row is None:
        return None
    try:
        data = blobs.read_blob(settings.attachments_dir, row.sha256)
    except OSError as exc:
        log.error("web: attachment %d (%s, ticket #%d) is missing from %s: %s", row.id,
                  row.filename, row.ticket_number, settings.attachments_dir, exc)
        raise FileMissing(f"the bytes of attachment {row.id} are missing") from exc
    return Download(row.filename, row.content_type, data, row.ticket_number)


def read_raw(engine: Engine, message_id: int) -> Download | None:
    """An inbound message's accepted bytes as an .eml download."""
    with session_scope(engine) as session:
        raw = stored.raw_mail(session, message_id)
    if raw is None:
        return None
    return Download(f"ticket-{raw.ticket_number}-message-{raw.message_id}.eml",
                    "message/rfc822", raw.data, raw.ticket_number)


def response(download: Download, *, sniff: bool = True) -> web.Response:
    """The download with its safe headers. `sniff=False` for the raw mail,
    whose type is known (message/rfc822, always an attachment)."""
    if sniff:
        serving = filetypes.serving(download.declared, download.filename, download.data)
    else:
        serving = filetypes.Serving(download.declared, inline=False)
    headers = {
        "Content-Type": serving.content_type,
        "Content-Disposition": filetypes.content_disposition(download.filename,
                                                             serving.inline),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Cache-Control": "private, no-store",
    }
    return web.Response(body=download.data, headers=headers)
