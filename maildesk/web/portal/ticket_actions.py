"""The ticket page's buttons (issue 16): mark as solved, follow, stop
getting the mails.

    POST /portal/tickets/<number>/solve      "my request is solved" (once support answered)
    POST /portal/tickets/<number>/follow     a colleague follows the ticket
    POST /portal/tickets/<number>/unfollow   a CC or follower stops its mails

Each checks the CSRF field (and Origin) first, then the session, the access
rule (store/access.py) and what the customer may do on this ticket, all in
the transaction that writes; a ticket they may not see is the same 404 as
one that does not exist. Done: back to the ticket page with a notice
(`?done=`); not possible (any more): back with the reason, nothing changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlmodel import Session

from maildesk.actions import customer as customer_actions
from maildesk.actions import following
from maildesk.config import Settings
from maildesk.models import utcnow
from maildesk.store import portal as store
from maildesk.web.pages import PAGES, _form
from maildesk.web.portal import auth, requests_page

log = logging.getLogger(__name__)

TICKETS = requests_page.TICKET_PATH
ACTIONS = ("solve", "follow", "unfollow")
#: The notices the ticket page shows after a button (`?done=`).
NOTICES = (*ACTIONS, *(f"not_{action}" for action in ACTIONS))


@dataclass(frozen=True)
class Offered:
    """The buttons a customer gets on a ticket (pure: from the standing)."""

    solve: bool
    follow: bool
    unfollow: bool


def offered(status: str, standing: store.Standing) -> Offered:
    done = status in ("solved", "closed")
    return Offered(
        solve=standing.answered and not done and (standing.requester or standing.role == "cc"),
        follow=not done and not standing.requester and standing.role is None,
        unfollow=standing.role is not None)


@dataclass(frozen=True)
class Outcome:
    state: str  # done / refused / missing / login
    customer: store.PortalCustomer | None = None
    outbox_ids: tuple[int, ...] = ()


def _apply(session: Session, settings: Settings, secret: bytes, token_hash: str,
           now: datetime, number: int, action: str) -> Outcome:
    found = auth.current(session, token_hash, now)
    if found is None:
        return Outcome("login")
    ticket = store.visible_ticket(session, found.viewer, number)
    if ticket is None:
        return Outcome("missing", found.customer)
    standing = store.standing(session, ticket.id, found.viewer)
    allowed = offered(ticket.status, standing)
    if not getattr(allowed, action):
        return Outcome("refused", found.customer)
    email = found.customer.email
    if action == "solve":
        result = customer_actions.solve_in(session, settings, secret, number, email,
                                           "marked solved in the portal")
        return Outcome("done" if result.outcome == "solved" else "refused", found.customer,
                       result.outbox_ids)
    if action == "follow":
        changed = following.follow(session, ticket.id, email, found.customer.name)
    else:
        changed = following.leave(session, ticket.id, email, standing.role or "follower")
    return Outcome("done" if changed else "refused", found.customer)


def _number(request: web.Request) -> int | None:
    raw = request.match_info["number"]
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def handler(action: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The POST handler of one button."""

    async def post(request: web.Request) -> web.StreamResponse:
        pages = request.app[PAGES]
        number = _number(request)
        back = f"{TICKETS}{number}" if number is not None else auth.HOME
        _, ok = await _form(request)
        if not ok:
            log.warning("portal: POST %s refused: CSRF token missing or wrong", request.path)
            return auth.render(request, "form_expired", None, 403, action=back)
        token_hash = auth.session_hash(request)
        if token_hash is None:
            return auth.redirect(auth.LOGIN)
        if number is None:
            return auth.redirect(auth.HOME)
        outcome = await auth.in_transaction(request, _apply, pages.settings, pages.secret,
                                            token_hash, utcnow(), number, action)
        if outcome.state == "login":
            return auth.to_login()
        if outcome.state == "missing":
            assert outcome.customer is not None
            return auth.render(request, "portal_ticket", outcome.customer.language, 404,
                               ticket=None, home=auth.HOME, customer=outcome.customer,
                               nav="requests")
        assert outcome.customer is not None
        if outcome.outbox_ids:
            pages.dispatch(list(outcome.outbox_ids))
        log.info("portal: customer %d %s #%d (%s)", outcome.customer.id, action, number,
                 outcome.state, extra={"ticket": number})
        result = action if outcome.state == "done" else "not_" + action
        return auth.redirect(f"{back}?done={result}")
    return post


def paths(number: int) -> dict[str, str]:
    """The form targets of a ticket's buttons."""
    return {action: f"{TICKETS}{number}/{action}" for action in ACTIONS}


def add_routes(app: web.Application) -> None:
    for action in ACTIONS:
        app.router.add_post(TICKETS + "{number}/" + action, handler(action))
