"""GET /portal/: "My requests", the tickets the logged-in customer may see.

Which tickets is store/access.py's rule (own tickets, those they are CC or
follower of, the organisation's for main contacts and administrators where
both settings allow it), read in the same transaction that checks the
session. `?status=open` (the default: neither solved nor closed) or
`?status=all`; `?page=N`, PER_PAGE a page. Without a live session: a
redirect to the login form, and nothing is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web
from sqlmodel import Session

from maildesk.models import utcnow
from maildesk.store import access as access_store
from maildesk.store import portal as store
from maildesk.web.portal import auth

PER_PAGE = 25
FILTERS = ("open", "all")
#: The highest page number looked at (a silly ?page= is no large OFFSET).
MAX_PAGE = 10_000
TICKET_PATH = "/portal/tickets/"


@dataclass(frozen=True)
class Listing:
    customer: store.PortalCustomer
    rows: list[store.RequestRow]
    total: int


def _listing(session: Session, token_hash: str, now: datetime, open_only: bool,
             page: int) -> Listing | None:
    customer_id = auth.live_customer(session, token_hash, now)
    if customer_id is None:
        return None
    customer = store.customer_by_id(session, customer_id)
    viewer = access_store.viewer_of(session, customer_id)
    if customer is None or viewer is None:
        return None
    rows, total = store.my_requests(session, viewer, open_only=open_only, page=page,
                                    per_page=PER_PAGE)
    return Listing(customer, rows, total)


def _page_number(raw: str | None) -> int:
    try:
        number = int(raw or "1")
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def _url(status: str, page: int) -> str:
    query = {"status": status} | ({"page": str(page)} if page > 1 else {})
    return auth.HOME + "?" + urlencode(query)


async def my_requests(request: web.Request) -> web.StreamResponse:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    status = request.query.get("status", "open")
    if status not in FILTERS:
        status = "open"
    page = _page_number(request.query.get("page"))
    listing = await auth.in_transaction(request, _listing, token_hash, utcnow(),
                                        status == "open", page)
    if listing is None:
        response = auth.redirect(auth.LOGIN)
        auth.drop_cookie(response)
        return response
    pages = max(1, math.ceil(listing.total / PER_PAGE))
    return auth.render(
        request, "portal_requests", listing.customer.language,
        posts=(auth.LOGOUT_EVERYWHERE,), nav="requests",
        customer=listing.customer, rows=listing.rows, total=listing.total, shown=status,
        page=page, pages=pages, ticket_path=TICKET_PATH,
        filter_urls={name: _url(name, 1) for name in FILTERS},
        previous_url=_url(status, page - 1) if page > 1 else None,
        next_url=_url(status, page + 1) if page < pages else None,
        confirmed_now=request.query.get("confirmed") == "1")
