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
field has proven the form ours (web/portal/form_reader.py). Files are
limited as the API's uploads are (limits.max_attachment_bytes each,
limits.max_message_bytes together, actions/uploads.MAX_FILES), refused the
moment one passes a limit. The
message itself is actions/portal.py's: stored as a customer's mail would
be, with the lifecycle and the agents' notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session

from maildesk.actions import portal as portal_actions
from maildesk.actions import uploads
from maildesk.actions.colleagues import Colleague
from maildesk.config import Settings
from maildesk.models import utcnow
from maildesk.store import blobs
from maildesk.store import portal as store
from maildesk.tickets.lifecycle import FOLLOWUP, next_status
from maildesk.types import Address
from maildesk.web import files
from maildesk.web.pages import PAGES
from maildesk.web.portal import auth, form_reader, requests_page, ticket_actions
from maildesk.web.portal.form_reader import FormRefused
from maildesk.web.portal.form_reader import size_text as _size

log = logging.getLogger(__name__)

TICKETS = requests_page.TICKET_PATH
ATTACHMENTS = "/portal/attachments/"
TEXT_FIELD = "text"
FILES_FIELD = form_reader.FILES_FIELD
#: The message text as bytes, at most (the action's own limit is in characters).
TEXT_BYTES = 4 * portal_actions.MAX_TEXT
#: A ticket number or attachment id as we make them.
MAX_DIGITS = 18


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
    standing: store.Standing | None = None
    #: The colleagues the CC form offers (empty: no form).
    colleagues: list[Colleague] = field(default_factory=list)


def _view(session: Session, token_hash: str, now: datetime, number: int | None) -> View | None:
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    ticket = (store.visible_ticket(session, found.viewer, number)
              if number is not None else None)
    if ticket is None:
        return View(found.customer)
    standing = store.standing(session, ticket.id, found.viewer)
    colleagues = (ticket_actions.cc_candidates(session, found.customer.id, standing)
                  if ticket_actions.offered(ticket.status, standing).cc else [])
    return View(found.customer, ticket, store.public_messages(session, ticket.id),
                standing, colleagues)


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


def _page(request: web.Request, view: View, status: int = 200, *, error: str | None = None,
          filename: str = "", text: str = "", sent: bool = False,
          opened: bool = False) -> web.Response:
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
    buttons = ticket_actions.paths(ticket.number)
    offered = (ticket_actions.offered(ticket.status, view.standing)
               if view.standing is not None else ticket_actions.Offered(False, False, False))
    colleagues = view.colleagues if offered.cc else []
    done = request.query.get("done", "")
    return auth.render(
        request, "portal_ticket", language, status, posts=(post_to, *buttons.values()),
        nav="requests", buttons=buttons, offered=offered,
        done=done if done in ticket_actions.NOTICES else "",
        role=view.standing.role if view.standing else None,
        colleagues=colleagues, cc_field=ticket_actions.CC_FIELD,
        customer=view.customer, ticket=ticket, messages=messages, category=category,
        created=_when(ticket.created_at, chosen, zone),
        updated=_when(ticket.updated_at, chosen, zone),
        closed=closed, post_to=post_to, home=auth.HOME, error=error, filename=filename,
        text=text, sent=sent, opened=opened, support=settings.mail.addresses[0],
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
        return auth.to_login()
    if view.ticket is None:
        return _not_found(request, view.customer)
    return _page(request, view, sent=request.query.get("sent") == "1",
                 opened=request.query.get("created") == "1")


# -- a message --------------------------------------------------------------------------------


async def _read_form(request: web.Request, settings: Settings,
                     secret: bytes) -> form_reader.Posted | None:
    """The posted message (web/portal/form_reader.py); None when the CSRF
    field is missing, is not the first one or is wrong (or the Origin is
    foreign): nothing else is read."""
    return await form_reader.read_form(request, settings, secret, {TEXT_FIELD: TEXT_BYTES})


@dataclass(frozen=True)
class Written:
    outcome: str  # written / login / missing
    customer: store.PortalCustomer | None = None
    added: portal_actions.Added | None = None


def _write(session: Session, settings: Settings, secret: bytes, token_hash: str,
           now: datetime, number: int, posted: form_reader.Posted) -> Written:
    """The session, the access rule and the message, in one transaction
    (refusals raise: nothing is kept)."""
    found = auth.current(session, token_hash, now)
    if found is None:
        return Written("login")
    if store.visible_ticket(session, found.viewer, number) is None:
        return Written("missing", found.customer)
    author = Address(found.customer.email, found.customer.name)
    added = portal_actions.add_message(session, settings, secret, number, author,
                                       posted.value(TEXT_FIELD), posted.files)
    return Written("written", found.customer, added)


async def post_message(request: web.Request) -> web.StreamResponse:
    pages = request.app[PAGES]
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    number = _number(request, "number")
    view = await auth.in_transaction(request, _view, token_hash, utcnow(), number)
    if view is None:
        return auth.to_login()
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
                     error=refused.reason, text=posted.value(TEXT_FIELD))
    except uploads.UploadRefused as refused:
        return _page(request, view, 413, error="file_refused", filename=refused.filename,
                     text=posted.value(TEXT_FIELD))
    if written.outcome == "login":
        return auth.to_login()
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
        return auth.to_login()
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

