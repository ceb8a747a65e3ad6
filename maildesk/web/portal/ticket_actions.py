"""The ticket page's buttons (issue 16): mark as solved, follow, stop
getting the mails, put colleagues in copy.

    POST /portal/tickets/<number>/solve      "my request is solved" (once support answered)
    POST /portal/tickets/<number>/follow     a colleague follows the ticket
    POST /portal/tickets/<number>/unfollow   a CC or follower stops its mails
    POST /portal/tickets/<number>/cc         the requester or a CC adds colleagues (`cc` ids)

The CC form sends colleague ids, never addresses; each id is checked
against the customer's colleagues (actions/colleagues.py) in the writing
transaction, and one forged id refuses the whole form.

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

from maildesk.actions import colleagues as colleague_actions
from maildesk.actions import customer as customer_actions
from maildesk.actions import following
from maildesk.config import Settings
from maildesk.models import Event, utcnow
from maildesk.store import portal as store
from maildesk.store import tickets as ticket_store
from maildesk.web.pages import PAGES, _form
from maildesk.web.portal import auth, requests_page

log = logging.getLogger(__name__)

TICKETS = requests_page.TICKET_PATH
ACTIONS = ("solve", "follow", "unfollow", "cc")
#: The CC form's checkbox field: one colleague id per ticked box.
CC_FIELD = "cc"
#: The notices the ticket page shows after a button (`?done=`).
NOTICES = (*ACTIONS, *(f"not_{action}" for action in ACTIONS))


@dataclass(frozen=True)
class Offered:
    """The buttons a customer gets on a ticket (pure: from the standing)."""

    solve: bool
    follow: bool
    unfollow: bool
    #: May put colleagues in copy: the requester or a CC (a follower only
    #: listens), while the ticket takes messages (a closed one does not).
    cc: bool = False


def offered(status: str, standing: store.Standing) -> Offered:
    done = status in ("solved", "closed")
    involved = standing.requester or standing.role == "cc"
    return Offered(
        solve=standing.answered and not done and involved,
        follow=not done and not standing.requester and standing.role is None,
        unfollow=standing.role is not None,
        cc=involved and status != "closed")


def cc_candidates(session: Session, customer_id: int,
                  standing: store.Standing) -> list[colleague_actions.Colleague]:
    """The colleagues the CC form offers: those not on the ticket yet."""
    return [c for c in colleague_actions.colleagues_of(session, customer_id)
            if c.email.lower() not in standing.people]


def cc_ids(values: list[str]) -> tuple[int, ...] | None:
    """The ticked colleague ids; None when one is no id at all (a forged
    form: refused as a whole) or none is ticked."""
    if not values or any(not v.isdigit() or len(v) > 18 for v in values):
        return None
    return tuple(dict.fromkeys(int(v) for v in values))


@dataclass(frozen=True)
class Outcome:
    state: str  # done / refused / missing / login
    customer: store.PortalCustomer | None = None
    outbox_ids: tuple[int, ...] = ()


def _apply(session: Session, settings: Settings, secret: bytes, token_hash: str,
           now: datetime, number: int, action: str, ids: tuple[int, ...] = ()) -> Outcome:
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
    elif action == "cc":
        offered_ids = {c.id for c in cc_candidates(session, found.customer.id, standing)}
        if not ids or not offered_ids.issuperset(ids):
            log.warning("portal: customer %d: CC of #%d refused: ids %s are not all "
                        "colleagues who may be added", found.customer.id, number, list(ids))
            return Outcome("refused", found.customer)
        events = colleague_actions.add_cc(session, ticket.id, found.customer.id, ids, email)
        ticket_store.insert_many(session, Event, events)
        changed = bool(events)
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
        ids: tuple[int, ...] | None = ()
        if action == "cc":
            posted = await request.post()
            ids = cc_ids([v for v in posted.getall(CC_FIELD, []) if isinstance(v, str)])
        if not ok:
            log.warning("portal: POST %s refused: CSRF token missing or wrong", request.path)
            return auth.render(request, "form_expired", None, 403, action=back)
        token_hash = auth.session_hash(request)
        if token_hash is None:
            return auth.redirect(auth.LOGIN)
        if number is None:
            return auth.redirect(auth.HOME)
        if ids is None:
            return auth.redirect(f"{back}?done=not_{action}")
        outcome = await auth.in_transaction(request, _apply, pages.settings, pages.secret,
                                            token_hash, utcnow(), number, action, ids)
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
