"""The pages mail links lead to: satisfaction survey, "mark as solved", the
registration confirmation (SPEC §7, §8; seed 001) and the download of a
customer's file from an agent notice.

Every page is reached by a signed, expiring link from a mail (tickets/links.py).
Opening a link (GET) only shows a page: mail security scanners open every
link, so anything that changes state needs the form's explicit POST, with
its CSRF token (csrf.py). A tampered link answers 404, an expired one 410,
each with a page that says so in the customer's language; nothing is
stored for either.

Database work runs in a small thread pool with a timeout, so a slow
database never stalls the event loop that the SMTP listeners share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.engine import Engine

from maildesk.actions import customer as customer_actions
from maildesk.config import Settings
from maildesk.mail.language import mail_language
from maildesk.models import utcnow
from maildesk.tickets import csat, links
from maildesk.web import csrf, files
from maildesk.web.page_render import PageRenderer

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest a page's database work may take before the page answers 503.
DB_TIMEOUT = 10.0


@dataclass
class Pages:
    """What the page handlers need: reached through `request.app[PAGES]`."""

    settings: Settings
    engine: Engine
    secret: bytes
    renderer: PageRenderer
    dispatch: Callable[[list[int]], None]
    pool: ThreadPoolExecutor

    @classmethod
    def create(cls, settings: Settings, engine: Engine, secret: bytes,
               dispatch: Callable[[list[int]], None]) -> Pages:
        override = Path(settings.notify.templates_dir) if settings.notify.templates_dir else None
        renderer = PageRenderer(override, settings.mail.default_language,
                                timezone=settings.calendar.timezone)
        pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="maildesk-page")
        return cls(settings, engine, secret, renderer, dispatch, pool)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn in the pool; a database that does not answer in time is a 503
        (the customer can try the link again later; nothing was changed or
        the change rolls back)."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.pool, partial(fn, *args)),
                                          DB_TIMEOUT)
        except TimeoutError:
            log.warning("web: %s gave no answer within %g s (answered 503)",
                        getattr(fn, "__name__", fn), DB_TIMEOUT)
            raise web.HTTPServiceUnavailable(
                text="503: Bitte versuchen Sie es in einigen Minuten noch einmal. / "
                     "Please try again in a few minutes.\n",
                headers={"Retry-After": "120"}) from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


PAGES = web.AppKey("maildesk-pages", Pages)


# -- rendering -------------------------------------------------------------------------------


def _browser_language(request: web.Request) -> str | None:
    """For pages that know no customer (a broken link): the browser's choice."""
    return mail_language({"accept-language": request.headers.get("Accept-Language", "")}, "")


def _page(request: web.Request, name: str, language: str | None, status: int = 200,
          **context: Any) -> web.Response:
    pages = request.app[PAGES]
    response = web.Response(status=status, content_type="text/html", charset="utf-8")
    token = csrf.issue(request, response, pages.secret,
                       secure=pages.settings.web.base_url.startswith("https://"))
    response.text = pages.renderer.render(name, language, {
        **context, "csrf_field": csrf.FIELD, "csrf_token": token,
        "brand": pages.settings.notify.brand, "action": request.path,
    })
    return response


def _link_error(request: web.Request, error: links.BadLink, language: str | None) -> web.Response:
    status = 410 if error.reason == "expired" else 404
    log.info("web: %s link refused (%s): %s", request.path.split("/")[1], error.reason, error)
    return _page(request, "link_error", language or _browser_language(request), status,
                 reason=error.reason)


async def _verify(request: web.Request, purpose: str) -> links.LinkTarget | web.Response:
    pages = request.app[PAGES]
    try:
        return links.verify(pages.secret, purpose, request.match_info["token"], utcnow())
    except links.BadLink as error:
        language = None
        if error.reason == "expired":  # genuine: we may look up whom it was for
            language = await _language_of_expired(request, purpose)
        return _link_error(request, error, language)


async def _language_of_expired(request: web.Request, purpose: str) -> str | None:
    pages = request.app[PAGES]
    subject = int(request.match_info["token"].split(".", 1)[0])
    if purpose == "file":  # an agent's link: the subject is a file, not a ticket
        return None
    if purpose == "confirm":
        customer = await pages.run(customer_actions.customer_page, pages.engine, subject)
        return customer.language if customer else None
    ticket = await pages.run(customer_actions.ticket_page, pages.engine, subject)
    return ticket.language if ticket else None


async def _form(request: web.Request) -> tuple[dict[str, str], bool]:
    """The posted fields, and whether the CSRF check passed."""
    pages = request.app[PAGES]
    data = await request.post()
    fields = {k: str(v) for k, v in data.items() if isinstance(v, str)}
    ok = csrf.valid(request, fields.get(csrf.FIELD), pages.secret,
                    csrf.origins(pages.settings.web.base_url, request))
    return fields, ok


def _forbidden(request: web.Request, language: str | None) -> web.Response:
    log.warning("web: POST %s refused: CSRF token missing or wrong", request.path)
    return _page(request, "form_expired", language, 403)


# -- satisfaction survey ---------------------------------------------------------------------


def _survey(request: web.Request, ticket: customer_actions.TicketPage,
            rating: customer_actions.Rating | None, status: int = 200, *,
            score: int | None = None, reason: str | None = None, error: str | None = None,
            result: str | None = None) -> web.Response:
    settings = request.app[PAGES].settings
    now = utcnow()
    changeable_until: datetime | None = None
    locked = False
    if rating is not None:
        changeable_until = rating.created_at + _days(settings.web.csat_change_days)
        locked = not csat.can_change(rating.created_at, now, settings.web.csat_change_days)
    chosen = score if score is not None else (rating.score if rating else None)
    return _page(request, "csat", ticket.language, status, ticket=ticket, rating=rating,
                 scale=list(enumerate(csat.SCALE, start=1)),
                 satisfied_from=csat.SATISFIED_FROM, chosen=chosen,
                 reason=reason if reason is not None else (rating.reason if rating else ""),
                 changeable_until=changeable_until, locked=locked, error=error, result=result)


def _days(days: float) -> timedelta:
    return timedelta(days=days)


async def _linked(request: web.Request, purpose: str,
                  load: Callable[[Any, int], T | None]) -> T | web.Response:
    """What a link points at (a ticket, a customer), or the error page to
    answer with: a bad or expired link, or nothing behind a good one."""
    target = await _verify(request, purpose)
    if isinstance(target, web.Response):
        return target
    pages = request.app[PAGES]
    found = await pages.run(load, pages.engine, target.subject)
    if found is None:
        return _link_error(request, links.BadLink("malformed", f"no {purpose} subject"), None)
    return found


async def _ticket_link(request: web.Request, purpose: str
                       ) -> customer_actions.TicketPage | web.Response:
    return await _linked(request, purpose, customer_actions.ticket_page)


async def csat_form(request: web.Request) -> web.Response:
    """GET: the survey. Records nothing, whoever opens it."""
    ticket = await _ticket_link(request, "csat")
    if isinstance(ticket, web.Response):
        return ticket
    pages = request.app[PAGES]
    rating = await pages.run(customer_actions.rating_of, pages.engine, ticket.id)
    return _survey(request, ticket, rating)


async def csat_submit(request: web.Request) -> web.Response:
    ticket = await _ticket_link(request, "csat")
    if isinstance(ticket, web.Response):
        return ticket
    pages = request.app[PAGES]
    fields, ok = await _form(request)
    if not ok:
        return _forbidden(request, ticket.language)
    reason = csat.clean_reason(fields.get("reason"))
    try:
        score = csat.parse_score(fields.get("score"))
    except csat.InvalidRating:
        rating = await pages.run(customer_actions.rating_of, pages.engine, ticket.id)
        return _survey(request, ticket, rating, 400, reason=reason, error="no_score")
    if not csat.needs_reason(score):
        reason = ""  # a reason belongs to an answer below "satisfied" only
    result = await pages.run(customer_actions.record_rating, pages.engine, pages.settings,
                             ticket, score, reason)
    log.info("web: csat for #%s: %s (%s)", ticket.number, result.outcome, score,
             extra={"ticket": ticket.number})
    if result.outcome == "locked":
        return _survey(request, ticket, result.rating, 409, result="locked")
    return _page(request, "csat_thanks", ticket.language, ticket=ticket, rating=result.rating,
                 outcome=result.outcome, changeable_until=result.rating.created_at
                 + _days(pages.settings.web.csat_change_days))


# -- mark as solved --------------------------------------------------------------------------


async def solve_form(request: web.Request) -> web.Response:
    """GET: asks to confirm. Changes nothing."""
    ticket = await _ticket_link(request, "solve")
    if isinstance(ticket, web.Response):
        return ticket
    return _page(request, "solve", ticket.language, ticket=ticket, done=None)


async def solve_submit(request: web.Request) -> web.Response:
    ticket = await _ticket_link(request, "solve")
    if isinstance(ticket, web.Response):
        return ticket
    pages = request.app[PAGES]
    _, ok = await _form(request)
    if not ok:
        return _forbidden(request, ticket.language)
    result = await pages.run(customer_actions.mark_solved, pages.engine, pages.settings,
                             pages.secret, ticket.number)
    if result.outbox_ids:
        pages.dispatch(list(result.outbox_ids))
    log.info("web: #%s marked solved by the customer: %s", ticket.number, result.outcome,
             extra={"ticket": ticket.number})
    csat_url = None
    if result.outcome in ("solved", "already_solved"):
        csat_url = links.make_url(pages.settings.web.base_url, pages.secret, "csat",
                                  ticket.number, utcnow(), pages.settings.web.csat_link_days)
    return _page(request, "solve", ticket.language, ticket=ticket, done=result.outcome,
                 csat_url=csat_url)


# -- registration confirmation ---------------------------------------------------------------


async def _customer_link(request: web.Request) -> customer_actions.CustomerPage | web.Response:
    return await _linked(request, "confirm", customer_actions.customer_page)


async def confirm_form(request: web.Request) -> web.Response:
    customer = await _customer_link(request)
    if isinstance(customer, web.Response):
        return customer
    return _page(request, "confirm", customer.language, customer=customer, done=None)


async def confirm_submit(request: web.Request) -> web.Response:
    customer = await _customer_link(request)
    if isinstance(customer, web.Response):
        return customer
    pages = request.app[PAGES]
    _, ok = await _form(request)
    if not ok:
        return _forbidden(request, customer.language)
    changed = await pages.run(customer_actions.confirm_customer, pages.engine, customer.id)
    log.info("web: customer %s %s", customer.email,
             "confirmed the address" if changed else "was already confirmed")
    return _page(request, "confirm", customer.language, customer=customer,
                 done="confirmed" if changed else "already")


# -- a customer's file, linked from an agent notice -----------------------------------------


async def file_download(request: web.Request) -> web.StreamResponse:
    """GET only, and a read: a scanner fetching the link changes nothing."""
    target = await _verify(request, "file")
    if isinstance(target, web.Response):
        return target
    pages = request.app[PAGES]
    try:
        download = await pages.run(files.read_attachment, pages.engine, pages.settings,
                                   target.subject)
    except files.FileMissing:
        download = None
    if download is None:
        return _link_error(request, links.BadLink("malformed", "no such file"), None)
    log.info("web: file %d (%s) of #%d downloaded by link", target.subject,
             download.filename, download.ticket_number,
             extra={"ticket": download.ticket_number})
    return files.response(download)


def add_customer_pages(app: web.Application) -> None:
    app.router.add_get("/files/{token}", file_download)
    for path, show, submit in (("/csat/{token}", csat_form, csat_submit),
                               ("/solve/{token}", solve_form, solve_submit),
                               ("/confirm/{token}", confirm_form, confirm_submit)):
        app.router.add_get(path, show)
        app.router.add_post(path, submit)
