"""The portal's "New request" form (issue 16).

    GET  /portal/new                 the form
    POST /portal/new                 opens the ticket; 303 to its page (?created=1)
    GET  /portal/assets/suggest.js   the script that suggests help articles
                                     while the subject is typed

The ticket is opened as the web/phone intake opens one (actions/intake.py
open_in): channel web, the logged-in customer as requester, the request
type's priority, the category, the product version, the files with the
first message, the chosen colleagues in CC, and the mails of
"ticket_recorded" (the acknowledgement to the customer, the agents'
notice). The session is checked, the colleagues looked up, the fields
checked (web/portal/request_form.py) and the ticket opened in one
transaction. A field that cannot be taken re-renders the form with 400,
every typed value kept (files cannot be: the page says so), each error
next to its field and a summary on top.

The form is multipart/form-data with the CSRF field first
(web/portal/form_reader.py): nothing of it is read before that field has
proven it ours, and a file over a limit is refused (413) while it streams.

The same form sent twice opens one ticket: each form carries a one-time id,
remembered by this process with the ticket it opened (a second post waits
for the first and is sent to the same ticket); behind it, a ticket of the
same requester with the same subject and text opened within DUPLICATE_WINDOW
is taken as the one asked for (another process, a restart).

This page alone may run a script (its own, from /portal/assets/): its
Content-Security-Policy adds script-src and connect-src 'self' to the
server's. Without script the page works as well: the suggestions for the
typed subject are rendered into the page whenever it is shown again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlmodel import Session

from maildesk.actions import colleagues as colleague_actions
from maildesk.actions import intake, uploads
from maildesk.articles import library
from maildesk.config import Settings
from maildesk.models import utcnow
from maildesk.store import portal as store
from maildesk.web.page_render import BUILTIN_DIR
from maildesk.web.pages import PAGES
from maildesk.web.portal import auth, form_reader, help_page, requests_page
from maildesk.web.portal import request_form as rules
from maildesk.web.portal.form_reader import FormRefused

log = logging.getLogger(__name__)

PATH = auth.NAV["new"]
SCRIPT = "/portal/assets/suggest.js"
#: Beside the page templates (shipped with them: deliver.render.shipped_templates).
SCRIPT_FILE = BUILTIN_DIR / "static" / "suggest.js"
#: The help articles' JSON suggestions (web/portal/help_page.py).
SUGGEST_URL = help_page.SUGGEST
FORM_ID = "form_id"
#: The text fields and how many bytes each may have (the checks are in characters).
LIMITS = {rules.SUBJECT: 4 * rules.MAX_SUBJECT, rules.DESCRIPTION: 4 * rules.MAX_DESCRIPTION}
#: The same requester, subject and text within this long: the same request.
DUPLICATE_WINDOW = timedelta(seconds=60)
#: How long a form's id is remembered, and for how many forms at most.
REMEMBER = timedelta(minutes=10)
MAX_FORMS = 10_000
SCRIPT_MAX_AGE = 3600


# -- one ticket per form ----------------------------------------------------------------------


@dataclass
class Submits:
    """The forms this process is opening or has opened: (customer, form
    id) -> when, and the ticket number (None: none was opened)."""

    forms: dict[tuple[int, str], tuple[datetime, asyncio.Future[int | None]]] = field(
        default_factory=dict)

    def claim(self, key: tuple[int, str], now: datetime) -> asyncio.Future[int | None] | None:
        """None: this request opens the ticket (and must `settle`); else
        the earlier request's outcome to wait for."""
        for old in [k for k, (at, _) in self.forms.items() if at <= now - REMEMBER]:
            del self.forms[old]
        if key in self.forms:
            return self.forms[key][1]
        if len(self.forms) >= MAX_FORMS:
            del self.forms[next(iter(self.forms))]
        self.forms[key] = (now, asyncio.get_running_loop().create_future())
        return None

    def settle(self, key: tuple[int, str], number: int | None) -> None:
        entry = self.forms.get(key)
        if entry is None:
            return
        if not entry[1].done():
            entry[1].set_result(number)
        if number is None:  # nothing opened: the form may be sent again
            del self.forms[key]


SUBMITS = web.AppKey("maildesk-portal-new-requests", Submits)


def _form_key(customer_id: int, raw: str) -> tuple[int, str] | None:
    return (customer_id, raw) if 16 <= len(raw) <= 64 and raw.isascii() and raw.isprintable() \
        else None


# -- help articles ----------------------------------------------------------------------------


def suggestions(settings: Settings, text: str) -> list[dict[str, str]]:
    """Help articles matching `text`, as the help pages' suggest endpoint
    gives them to the script ({title, url, category, snippet})."""
    found = library.for_settings(settings).suggest(" ".join(text.split()))
    return [{"title": f.article.title, "url": f.article.url, "category": f.article.category,
             "snippet": f.snippet} for f in found]


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    customer: store.PortalCustomer
    colleagues: list[colleague_actions.Colleague]


def _start(session: Session, token_hash: str, now: datetime) -> Start | None:
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    return Start(found.customer, colleague_actions.colleagues_of(session, found.customer.id))


def _policy() -> str:
    """The server's policy, with this page's own script and its fetches allowed."""
    from maildesk.web.server import CSP  # the server imports the portal: read at call time

    return f"{CSP}; script-src 'self'; connect-src 'self'"


def _page(request: web.Request, start: Start, status: int = 200, *,
          posted: form_reader.Posted | None = None,
          errors: Sequence[rules.FieldError] = (), problem: str | None = None,
          filename: str = "", articles: Sequence[dict[str, str]] = ()) -> web.Response:
    settings: Settings = request.app[PAGES].settings
    posted = posted or form_reader.Posted()
    language = start.customer.language
    chosen = request.app[PAGES].renderer.language_for("portal_new", language)
    form_id = posted.value(FORM_ID)
    if _form_key(start.customer.id, form_id) is None:
        form_id = secrets.token_urlsafe(18)
    values = {name: posted.value(name) for name in rules.FIELDS if name != rules.CC}
    response = auth.render(
        request, "portal_new", language, status, nav="new", customer=start.customer,
        values=values, cc_chosen=set(posted.values(rules.CC)),
        errors={e.field: e.reason for e in errors}, error_list=list(errors),
        problem=problem, filename=filename, files_again=bool(posted.files) or bool(filename),
        types=rules.type_choices(), categories=rules.category_choices(settings.categories),
        colleagues=start.colleagues, form_id=form_id, form_id_field=FORM_ID,
        articles=list(articles), script=SCRIPT, suggest_url=SUGGEST_URL,
        max_file=form_reader.size_text(settings.limits.max_attachment_bytes, chosen),
        max_total=form_reader.size_text(settings.limits.max_message_bytes, chosen),
        max_files=uploads.MAX_FILES, files_field=form_reader.FILES_FIELD,
        max_subject=rules.MAX_SUBJECT, max_version=rules.MAX_VERSION, home=auth.HOME)
    response.headers["Content-Security-Policy"] = _policy()
    return response


async def _again(request: web.Request, start: Start, status: int, posted: form_reader.Posted,
                 **context: Any) -> web.Response:
    """The form once more with what was typed, and the articles for its subject."""
    pages = request.app[PAGES]
    subject = posted.value(rules.SUBJECT)
    try:
        articles = await pages.run(suggestions, pages.settings, subject)
    except Exception as exc:  # noqa: BLE001 — the form matters, the suggestions do not
        log.warning("portal: no article suggestions for the new-request form: %s", exc)
        articles = []
    return _page(request, start, status, posted=posted, articles=articles, **context)


async def new_form(request: web.Request) -> web.StreamResponse:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    start = await auth.in_transaction(request, _start, token_hash, utcnow())
    if start is None:
        return auth.to_login()
    return _page(request, start)


# -- opening the ticket -----------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    outcome: str  # created / duplicate / invalid / login
    start: Start | None = None
    errors: list[rules.FieldError] = field(default_factory=list)
    number: int | None = None
    outbox_ids: tuple[int, ...] = ()


def _write(session: Session, settings: Settings, secret: bytes, token_hash: str,
           now: datetime, posted: form_reader.Posted) -> Written:
    """Session, colleagues, fields and the ticket in one transaction
    (UploadRefused / CcRefused / IntakeError raise: nothing is kept)."""
    found = auth.current(session, token_hash, now)
    if found is None:
        return Written("login")
    customer = found.customer
    start = Start(customer, colleague_actions.colleagues_of(session, customer.id))
    clean, errors = rules.check(posted.fields, settings.categories,
                                {c.id for c in start.colleagues})
    if clean is None:
        return Written("invalid", start, errors)
    earlier = intake.recent_duplicate(session, customer.id, "web", clean.subject,
                                      clean.description, now - DUPLICATE_WINDOW)
    if earlier is not None:
        return Written("duplicate", start, number=earlier)
    cc = colleague_actions.chosen(session, customer.id, clean.cc)
    opened = intake.open_in(
        session, settings, secret, requester=customer.email, requester_name=customer.name,
        subject=clean.subject, text=clean.description, actor=customer.email, channel="web",
        request_type=clean.request_type, category=clean.category, version=clean.version,
        files=posted.files, cc=cc)
    return Written("created", start, number=opened.number, outbox_ids=opened.outbox_ids)


def _created(number: int) -> web.Response:
    return auth.redirect(f"{requests_page.TICKET_PATH}{number}?created=1")


async def new_submit(request: web.Request) -> web.StreamResponse:
    pages = request.app[PAGES]
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    start = await auth.in_transaction(request, _start, token_hash, utcnow())
    if start is None:
        return auth.to_login()
    try:
        posted = await form_reader.read_form(request, pages.settings, pages.secret, LIMITS)
    except FormRefused as refused:
        log.info("portal: new request of customer %d refused (%s)", start.customer.id,
                 refused.reason)
        return await _again(request, start, refused.status, refused.posted,
                            problem=refused.reason, filename=refused.filename)
    if posted is None:
        log.warning("portal: POST %s refused: CSRF token missing or wrong", request.path)
        return auth.render(request, "form_expired", start.customer.language, 403, action=PATH)
    key = _form_key(start.customer.id, posted.value(FORM_ID))
    submits = request.app[SUBMITS]
    while key is not None and (earlier := submits.claim(key, utcnow())) is not None:
        number = await asyncio.shield(earlier)
        if number is not None:  # the same form again: the ticket it opened
            log.info("portal: new-request form of customer %d sent again: #%d",
                     start.customer.id, number, extra={"ticket": number})
            return _created(number)
    number = None
    try:
        number = await _open(request, start, posted)
        return _created(number) if isinstance(number, int) else number
    finally:
        if key is not None:
            submits.settle(key, number if isinstance(number, int) else None)


async def _open(request: web.Request, start: Start,
                posted: form_reader.Posted) -> int | web.Response:
    """The new ticket's number, or the page that says why there is none."""
    pages = request.app[PAGES]
    try:
        written = await auth.in_transaction(request, _write, pages.settings, pages.secret,
                                            auth.session_hash(request), utcnow(), posted)
    except uploads.UploadRefused as refused:
        return await _again(request, start, 413, posted, problem="file_refused",
                            filename=refused.filename)
    except colleague_actions.CcRefused:
        return await _again(request, start, 400, posted,
                            errors=[rules.FieldError(rules.CC, "not_offered")])
    except intake.IntakeError as refused:
        log.warning("portal: new request of customer %d not opened: %s", start.customer.id,
                    refused)
        return await _again(request, start, 400, posted, problem="form")
    if written.outcome == "login":
        return auth.to_login()
    assert written.start is not None
    if written.outcome == "invalid":
        log.info("portal: new request of customer %d: %s", start.customer.id,
                 ", ".join(f"{e.field} {e.reason}" for e in written.errors))
        return await _again(request, written.start, 400, posted, errors=written.errors)
    assert written.number is not None
    if written.outcome == "duplicate":
        log.info("portal: customer %d sent the same request again: #%d", start.customer.id,
                 written.number, extra={"ticket": written.number})
        return written.number
    pages.dispatch(list(written.outbox_ids))
    log.info("portal: customer %d opened #%d (%d files, %d in CC)", start.customer.id,
             written.number, len(posted.files), len(posted.values(rules.CC)),
             extra={"ticket": written.number})
    return written.number


# -- the script -------------------------------------------------------------------------------


async def suggest_script(request: web.Request) -> web.StreamResponse:
    """The page's script: no secret in it, the same for everyone."""
    body = await request.app[PAGES].run(SCRIPT_FILE.read_bytes)
    return web.Response(body=body, headers={
        "Content-Type": "application/javascript; charset=utf-8",
        "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}"})


def add_routes(app: web.Application) -> None:
    app[SUBMITS] = Submits()
    app.router.add_get(PATH, new_form)
    app.router.add_post(PATH, new_submit)
    app.router.add_get(SCRIPT, suggest_script)
