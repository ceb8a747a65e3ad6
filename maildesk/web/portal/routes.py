"""Every page of the customers' portal under /portal/, in one list: a
reader finds here which module answers which path."""

from __future__ import annotations

from aiohttp import web

from maildesk.web.pages import PAGES
from maildesk.web.portal import (
    auth,
    help_page,
    new_request_page,
    profile_page,
    requests_page,
    ticket_actions,
    ticket_page,
)


async def _to_home(request: web.Request) -> web.StreamResponse:
    return auth.redirect(auth.HOME)


def add_portal_pages(app: web.Application) -> None:
    """The portal's routes, when [portal] enabled (the pages must be there)."""
    if not app[PAGES].settings.portal.enabled:
        return
    app[auth.CLIENTS] = auth.ClientLog()
    app.router.add_get("/portal", _to_home)
    app.router.add_get(auth.HOME, requests_page.my_requests)
    app.router.add_get(auth.LOGIN, auth.login_form)
    app.router.add_post(auth.LOGIN, auth.login_submit)
    app.router.add_get(auth.LOGIN + "/{token}", auth.link_form)
    app.router.add_post(auth.LOGIN + "/{token}", auth.link_submit)
    app.router.add_post(auth.LOGOUT, auth.logout_submit)
    app.router.add_post(auth.LOGOUT_EVERYWHERE, auth.logout_everywhere_submit)
    ticket_page.add_routes(app)
    ticket_actions.add_routes(app)
    new_request_page.add_routes(app)
    help_page.add_routes(app)
    profile_page.add_routes(app)
