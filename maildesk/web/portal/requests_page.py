"""GET /portal/: "My requests", the tickets the logged-in customer may see.

Which tickets is store/access.py's rule, read in the same transaction that
checks the session: the "mine" tab their own (requester, CC, follower),
the "organisation" tab — only for a customer whose scope is the
organisation (main contacts and administrators, where both settings allow
it, access.py) — all of the organisation's. Filters, search, sort and page
come from the address (web/portal/list_query.py); PER_PAGE a page.
Without a live session: a redirect to the login form, and nothing is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlmodel import Session

from maildesk import access
from maildesk.config import REQUEST_TYPES
from maildesk.models import utcnow
from maildesk.store import portal as store
from maildesk.web.portal import auth
from maildesk.web.portal import list_query as lists

PER_PAGE = 25
TICKET_PATH = "/portal/tickets/"
#: The columns a customer can sort by, in the table's order.
COLUMNS = ("number", "subject", "status", "request_type", "priority", "updated")


@dataclass(frozen=True)
class Listing:
    customer: store.PortalCustomer
    query: lists.ListQuery
    sees_organisation: bool
    rows: list[store.RequestRow]
    total: int


def _listing(session: Session, token_hash: str, now: datetime,
             values: dict[str, str]) -> Listing | None:
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    sees_organisation = (access.scope(found.viewer) == "organisation"
                         and found.viewer.organisation_id is not None)
    query = lists.parse(values, sees_organisation)
    wanted = store.RequestFilter(
        own_only=query.tab == "mine", open_only=query.status == "open",
        opened_since=query.opened_since(now), request_type=query.request_type,
        text=query.text, sort=query.sort, descending=query.direction == "desc")
    rows, total = store.my_requests(session, found.viewer, wanted, page=query.page,
                                    per_page=PER_PAGE)
    return Listing(found.customer, query, sees_organisation, rows, total)


def _headings(query: lists.ListQuery) -> list[dict[str, str]]:
    """Each column's sort link and aria-sort value (none where it cannot sort)."""
    headings = []
    for column in COLUMNS:
        key = {"request_type": ""}.get(column, column)
        sorted_by = key and query.sort == key
        headings.append({
            "column": column,
            "url": lists.sort_url(auth.HOME, query, key) if key else "",
            "aria_sort": ("ascending" if query.direction == "asc" else "descending")
            if sorted_by else ("none" if key else ""),
        })
    return headings


async def my_requests(request: web.Request) -> web.StreamResponse:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    listing = await auth.in_transaction(request, _listing, token_hash, utcnow(),
                                        dict(request.query))
    if listing is None:
        return auth.to_login()
    query = listing.query
    pages = max(1, math.ceil(listing.total / PER_PAGE))
    return auth.render(
        request, "portal_requests", listing.customer.language,
        nav="requests",
        customer=listing.customer, rows=listing.rows, total=listing.total, query=query,
        shown=query.status, page=query.page, pages=pages, ticket_path=TICKET_PATH,
        sees_organisation=listing.sees_organisation, home=auth.HOME,
        tab_urls={tab: lists.url(auth.HOME, query, tab=tab) for tab in lists.TABS},
        filter_urls={name: lists.url(auth.HOME, query, status=name)
                     for name in lists.STATUS_FILTERS},
        reset_url=lists.url(auth.HOME, lists.ListQuery(tab=query.tab, status=query.status)),
        periods=tuple(lists.PERIODS), request_types=REQUEST_TYPES,
        headings=_headings(query),
        previous_url=lists.url(auth.HOME, query, page=query.page - 1)
        if query.page > 1 else None,
        next_url=lists.url(auth.HOME, query, page=query.page + 1)
        if query.page < pages else None,
        confirmed_now=request.query.get("confirmed") == "1")
