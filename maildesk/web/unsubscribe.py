"""The unsubscribe link of announcements: /unsubscribe/<token> (RFC 8058).

POST is the one-click unsubscribe a mail client makes on its own (body
``List-Unsubscribe=One-Click``): no CSRF token (the client has no cookie;
the signed token is the proof, and all it can do is unsubscribe the
address it names), 200 and idempotent. The page's button posts the same.
GET only shows the page with the button: mail scanners open links. A
forged token is a 404 and nothing is written.
"""

from __future__ import annotations

import logging

from aiohttp import web

from maildesk.actions import announce
from maildesk.tickets import address_links
from maildesk.tickets.links import BadLink
from maildesk.web.pages import PAGES, _browser_language, _link_error, _page

log = logging.getLogger(__name__)


async def _address(request: web.Request) -> tuple[str, str | None] | web.Response:
    pages = request.app[PAGES]
    try:
        email = address_links.verify_unsubscribe(pages.secret, request.match_info["token"])
    except BadLink as error:
        return _link_error(request, error, _browser_language(request))
    language = await pages.run(announce.language_of, pages.engine, email)
    return email, language or _browser_language(request)


async def unsubscribe_form(request: web.Request) -> web.Response:
    """GET: the button. Writes nothing."""
    found = await _address(request)
    if isinstance(found, web.Response):
        return found
    email, language = found
    pages = request.app[PAGES]
    done = await pages.run(announce.is_unsubscribed, pages.engine, email)
    return _page(request, "unsubscribe", language, email=email, done=done)


async def unsubscribe_submit(request: web.Request) -> web.Response:
    """POST: one-click (RFC 8058) or the page's button; idempotent."""
    found = await _address(request)
    if isinstance(found, web.Response):
        return found
    email, language = found
    pages = request.app[PAGES]
    new = await pages.run(announce.unsubscribe, pages.engine, email, "link")
    log.info("web: %s %s announcements", email,
             "unsubscribed from" if new else "was already unsubscribed from")
    return _page(request, "unsubscribe", language, email=email, done=True)


def add_unsubscribe_pages(app: web.Application) -> None:
    path = address_links.UNSUBSCRIBE_PATH + "{token}"
    app.router.add_get(path, unsubscribe_form)
    app.router.add_post(path, unsubscribe_submit)
