"""A ticket in the portal (issue 16, second slice).

    GET  /portal/tickets/<number>            the ticket and its public communication
    POST /portal/tickets/<number>/messages   the customer's message with files
    GET  /portal/attachments/<id>            a file of a public message

Every read and write goes through the one access rule (store/access.py's
`visible`), in the same transaction that checks the session. A ticket the
customer may not see is answered exactly like one that does not exist (the
same 404 page, nothing in it naming the number), and so is a file of such
a ticket or of an internal note. Without a live session: to the login,
nothing read.

The message form is multipart/form-data, its CSRF field first: the body is
read as it streams in, and nothing of it (no file) is taken before that
field has proven the form ours. Files are limited as the API's uploads are
(limits.max_attachment_bytes each, limits.max_message_bytes together,
actions/uploads.MAX_FILES), refused the moment one passes a limit. The
message itself is actions/portal.py's: stored as a customer's mail would
be, with the lifecycle and the agents' notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from sqlmodel import Session

from maildesk.actions import portal as portal_actions
from maildesk.actions import uploads
from maildesk.config import Settings
from maildesk.models import utcnow
from maildesk.store import blobs
from maildesk.store import portal as store
from maildesk.tickets.lifecycle import FOLLOWUP, next_status
from maildesk.types import Address, ParsedAttachment
from maildesk.web import csrf, files
from maildesk.web.api.wire import form_filename
from maildesk.web.pages import PAGES
from maildesk.web.portal import auth, requests_page

log = logging.getLogger(__name__)

TICKETS = requests_page.TICKET_PATH
ATTACHMENTS = "/portal/attachments/"
TEXT_FIELD = "text"
FILES_FIELD = "files"
#: The message text as bytes, at most (the action's own limit is in characters).
TEXT_BYTES = 4 * portal_actions.MAX_TEXT
#: Any other field (the CSRF token) is short.
FIELD_BYTES = 1024
_CHUNK = 64 * 1024
#: A ticket number or attachment id as we make them.
MAX_DIGITS = 18


class FormRefused(Exception):
    """The form cannot be taken as sent; `reason` for the page, `filename`
    the file it is about."""

    def __init__(self, reason: str, filename: str = "", status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.filename, self.status = reason, filename, status


@dataclass
class Posted:
    text: str = ""
    files: list[ParsedAttachment] = field(default_factory=list)


# -- reading ----------------------------------------------------------------------------------


def _number(request: web.Request, name: str) -> int | None:
    raw = request.match_info[name]
    return int(raw) if raw.isdigit() and len(raw) <= MAX_DIGITS else None


@dataclass(frozen=True)
class View:
    """What the page shows; `ticket` None: not there for this customer."""

    customer: store.PortalCustomer
    ticket: store.PortalTicket | None = None
    messages: list[store.PortalMessage] = field(default_factory=list)


def _view(session: Session, token_hash: str, now: datetime, number: int | None) -> View | None:
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    ticket = (store.visible_ticket(session, found.viewer, number)
              if number is not None else None)
    if ticket is None:
        return View(found.customer)
    return View(found.customer, ticket, store.public_messages(session, ticket.id))


def _to_login() -> web.Response:
    response = auth.redirect(auth.LOGIN)
    auth.drop_cookie(response)
    return response


def _not_found(request: web.Request, customer: store.PortalCustomer) -> web.Response:
    """The same page for a ticket (or file) that does not exist and for one
    this customer may not see: nothing on it tells them apart."""
    return auth.render(request, "portal_ticket", customer.language, 404, ticket=None,
                       home=auth.HOME, customer=customer, nav="requests")


# -- the page ---------------------------------------------------------------------------------


def _when(value: datetime, language: str, zone: ZoneInfo) -> str:
    local = value.astimezone(zone) if value.tzinfo else value
    if language == "de":
        return local.strftime("%d.%m.%Y, %H:%M")
    return f"{local.day} {local:%B} {local.year}, {local:%H:%M}"


def _size(count: int, language: str) -> str:
    if count < 1024:
        text = f"{count} B"
    elif count < 1024 * 1024:
        text = f"{count / 1024:.0f} KB"
    else:
        text = f"{count / (1024 * 1024):.1f} MB"
    return text.replace(".", ",") if language == "de" else text


def _page(request: web.Request, view: View, status: int = 200, *, error: str | None = None,
          filename: str = "", text: str = "", sent: bool = False) -> web.Response:
    assert view.ticket is not None
    settings: Settings = request.app[PAGES].settings
    language = view.customer.language
    chosen = request.app[PAGES].renderer.language_for("portal_ticket", language)
    zone = ZoneInfo(settings.calendar.timezone)
    ticket = view.ticket
    post_to = f"{TICKETS}{ticket.number}/messages"
    closed = next_status(ticket.status, "customer_reply").effect == FOLLOWUP
    messages = [{
        "direction": m.direction, "mine": m.direction == "in"
        and m.from_addr == view.customer.email,
        "author": m.from_name or m.from_addr or settings.notify.brand,
        "at": _when(m.at, chosen, zone), "text": m.text,
        "files": [{"name": f.filename, "size": _size(f.size, chosen),
                   "url": f"{ATTACHMENTS}{f.id}"} for f in m.files],
    } for m in view.messages]
    category = " / ".join(part for part in (ticket.category, ticket.subcategory) if part)
    return auth.render(
        request, "portal_ticket", language, status, posts=(post_to,), nav="requests",
        customer=view.customer, ticket=ticket, messages=messages, category=category,
        created=_when(ticket.created_at, chosen, zone),
        updated=_when(ticket.updated_at, chosen, zone),
        closed=closed, post_to=post_to, home=auth.HOME, error=error, filename=filename,
        text=text, sent=sent, support=settings.mail.addresses[0],
        max_file=_size(settings.limits.max_attachment_bytes, chosen),
        max_total=_size(settings.limits.max_message_bytes, chosen),
        max_files=uploads.MAX_FILES, text_field=TEXT_FIELD, files_field=FILES_FIELD)


async def ticket_page(request: web.Request) -> web.StreamResponse:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    view = await auth.in_transaction(request, _view, token_hash, utcnow(),
                                     _number(request, "number"))
    if view is None:
        return _to_login()
    if view.ticket is None:
        return _not_found(request, view.customer)
    return _page(request, view, sent=request.query.get("sent") == "1")


# -- a message --------------------------------------------------------------------------------


async def _read(part: BodyPartReader, limit: int, refusal: FormRefused) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise refusal
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_form(request: web.Request, settings: Settings, secret: bytes) -> Posted | None:
    """The posted message; None when the CSRF field is missing, is not the
    first one or is wrong (or the Origin is foreign): nothing else is read."""
    own = csrf.origins(settings.web.base_url, request)
    if request.content_type == "application/x-www-form-urlencoded":  # no files in it
        data = await request.post()
        fields = {k: str(v) for k, v in data.items() if isinstance(v, str)}
        if not csrf.valid(request, fields.get(csrf.FIELD), secret, own):
            return None
        return Posted(fields.get(TEXT_FIELD, ""))
    if request.content_type != "multipart/form-data":
        return None  # no form of ours
    posted, proven, total = Posted(), False, 0
    max_file = settings.limits.max_attachment_bytes
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise FormRefused("form")
            name = part.name or ""
            if not proven:
                if name != csrf.FIELD or part.filename is not None:
                    return None
                token = await _read(part, FIELD_BYTES, FormRefused("form"))
                if not csrf.valid(request, token.decode("utf-8", "replace"), secret, own):
                    return None
                proven = True
            elif name == FILES_FIELD and part.filename is not None:
                filename = form_filename(part.filename)
                data = await _read(part, max_file, FormRefused("file_too_large", filename, 413))
                if not filename and not data:  # the browser's "no file chosen"
                    continue
                if not data:
                    raise FormRefused("file_empty", filename)
                if len(posted.files) >= uploads.MAX_FILES:
                    raise FormRefused("too_many", filename, 413)
                total += len(data)
                if total > settings.limits.max_message_bytes:
                    raise FormRefused("too_much", filename, 413)
                posted.files.append(uploads.uploaded(filename, part.headers.get(
                    "Content-Type"), data))
            elif name == TEXT_FIELD:
                raw = await _read(part, TEXT_BYTES, FormRefused("too_long", status=413))
                try:
                    posted.text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise FormRefused("form") from None
            else:
                await _read(part, FIELD_BYTES, FormRefused("form"))
    except (ValueError, AssertionError, HttpProcessingError):  # a broken form
        raise FormRefused("form") from None
    return posted if proven else None


@dataclass(frozen=True)
class Written:
    outcome: str  # written / login / missing
    customer: store.PortalCustomer | None = None
    added: portal_actions.Added | None = None


def _write(session: Session, settings: Settings, secret: bytes, token_hash: str,
           now: datetime, number: int, posted: Posted) -> Written:
    """The session, the access rule and the message, in one transaction
    (refusals raise: nothing is kept)."""
    found = auth.current(session, token_hash, now)
    if found is None:
        return Written("login")
    if store.visible_ticket(session, found.viewer, number) is None:
        return Written("missing", found.customer)
    author = Address(found.customer.email, found.customer.name)
    added = portal_actions.add_message(session, settings, secret, number, author,
                                       posted.text, posted.files)
    return Written("written", found.customer, added)


async def post_message(request: web.Request) -> web.StreamResponse:
    pages = request.app[PAGES]
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    number = _number(request, "number")
    view = await auth.in_transaction(request, _view, token_hash, utcnow(), number)
    if view is None:
        return _to_login()
    if view.ticket is None or number is None:
        return _not_found(request, view.customer)
    back = f"{TICKETS}{view.ticket.number}"
    try:
        posted = await _read_form(request, pages.settings, pages.secret)
    except FormRefused as refused:
        log.info("portal: message on #%d refused (%s)", view.ticket.number, refused.reason,
                 extra={"ticket": view.ticket.number})
        return _page(request, view, refused.status, error=refused.reason,
                     filename=refused.filename)
    if posted is None:
        log.warning("portal: POST %s refused: CSRF token missing or wrong", request.path)
        return auth.render(request, "form_expired", view.customer.language, 403, action=back)
    try:
        written = await auth.in_transaction(request, _write, pages.settings, pages.secret,
                                            token_hash, utcnow(), number, posted)
    except portal_actions.MessageRefused as refused:
        return _page(request, view, 409 if refused.reason in ("closed", "changed") else 400,
                     error=refused.reason, text=posted.text)
    except uploads.UploadRefused as refused:
        return _page(request, view, 413, error="file_refused", filename=refused.filename,
                     text=posted.text)
    if written.outcome == "login":
        return _to_login()
    if written.outcome != "written" or written.added is None:
        assert written.customer is not None
        return _not_found(request, written.customer)
    pages.dispatch(list(written.added.outbox_ids))
    log.info("portal: customer %d wrote on #%d (%d files)%s", view.customer.id, number,
             len(posted.files), ", reopened" if written.added.reopened else "",
             extra={"ticket": number})
    return auth.redirect(back + "?sent=1")


# -- a file -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileView:
    customer: store.PortalCustomer
    download: store.PortalDownload | None


def _file(session: Session, token_hash: str, now: datetime,
          attachment_id: int | None) -> FileView | None:
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    download = (store.public_attachment(session, found.viewer, attachment_id)
                if attachment_id is not None else None)
    return FileView(found.customer, download)


def _bytes(settings: Settings, download: store.PortalDownload) -> bytes | None:
    try:
        return blobs.read_blob(settings.attachments_dir, download.sha256)
    except OSError as exc:
        log.error("portal: attachment %d (%s, ticket #%d) is missing from %s: %s",
                  download.id, download.filename, download.ticket_number,
                  settings.attachments_dir, exc)
        return None


async def attachment(request: web.Request) -> web.StreamResponse:
    pages = request.app[PAGES]
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    found = await auth.in_transaction(request, _file, token_hash, utcnow(),
                                      _number(request, "attachment_id"))
    if found is None:
        return _to_login()
    if found.download is None:
        return _not_found(request, found.customer)
    download = found.download
    data = await pages.run(_bytes, pages.settings, download)
    if data is None:
        return _not_found(request, found.customer)
    log.info("portal: customer %d downloaded attachment %d of #%d", found.customer.id,
             download.id, download.ticket_number, extra={"ticket": download.ticket_number})
    return files.response(files.Download(download.filename, download.content_type, data,
                                         download.ticket_number))


def add_routes(app: web.Application) -> None:
    app.router.add_get(TICKETS + "{number}", ticket_page)
    app.router.add_post(TICKETS + "{number}/messages", post_message)
    app.router.add_get(ATTACHMENTS + "{attachment_id}", attachment)

