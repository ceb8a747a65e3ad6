"""/stop/<token>: a CC or follower stops the mails of one ticket.

The link is in every mail they get (deliver/mailcontext.py, signed for the
participant row, the ticket and the address: tickets/address_links.py).
GET shows a confirm page and changes nothing (mail scanners open links);
the form's POST, with its CSRF token, removes the address and records it
in the history. A forged link is a 404, an expired one 410; a link whose
address was removed already (or removed and added again: a new row)
removes nothing.
"""

from __future__ import annotations

import logging

from aiohttp import web

from maildesk.actions import participation
from maildesk.models import utcnow
from maildesk.tickets import address_links
from maildesk.tickets.links import BadLink
from maildesk.web.pages import PAGES, _browser_language, _forbidden, _form, _link_error, _page

log = logging.getLogger(__name__)


async def _target(request: web.Request) -> participation.Participation | web.Response:
    pages = request.app[PAGES]
    try:
        claim = address_links.parse_removal(request.match_info["token"])
    except BadLink as error:
        return _link_error(request, error, _browser_language(request))
    found = await pages.run(participation.participation, pages.engine, claim.participant_id)
    if found is None:  # removed already, or never ours: the same page either way
        return _page(request, "participant_removal", _browser_language(request), 404,
                     number="", subject="", email="", role="", done="gone")
    try:
        address_links.check_removal(pages.secret, claim, found.number, found.email, utcnow(),
                                    found.added_at)
    except BadLink as error:
        return _link_error(request, error, found.language if error.reason == "expired"
                           else _browser_language(request))
    return found


def _show(request: web.Request, found: participation.Participation,
          done: str | None) -> web.Response:
    return _page(request, "participant_removal", found.language, number=found.number,
                 subject=found.subject, email=found.email, role=found.role, done=done)


async def removal_form(request: web.Request) -> web.Response:
    found = await _target(request)
    if isinstance(found, web.Response):
        return found
    return _show(request, found, None)


async def removal_submit(request: web.Request) -> web.Response:
    found = await _target(request)
    if isinstance(found, web.Response):
        return found
    _, ok = await _form(request)
    if not ok:
        return _forbidden(request, found.language)
    pages = request.app[PAGES]
    removed = await pages.run(participation.remove_self, pages.engine, found)
    log.info("web: %s stopped the mails of #%s (%s)", found.email, found.number,
             "removed" if removed else "already gone", extra={"ticket": found.number})
    return _show(request, found, "removed" if removed else "gone")


def add_removal_pages(app: web.Application) -> None:
    path = address_links.REMOVAL_PATH + "{token}"
    app.router.add_get(path, removal_form)
    app.router.add_post(path, removal_submit)
