"""What a "My requests" address asks for, read from its query string.

Pure: the page's handler hands in the query's values, the store gets a
`ListQuery` of known values only. Whatever a visitor types into the
address (an unknown status, a sort column that is no column, a page of
"-3", a search of a megabyte) becomes the nearest sensible view instead of
an error: it is a list page, and a link from an old mail must still open.
`url()` writes the query back, so filters, sort and page survive each
other's links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from maildesk.config import REQUEST_TYPES

TABS = ("mine", "organisation")
STATUS_FILTERS = ("open", "all")
#: The periods offered, in days; "" is any time. By the day the ticket was opened.
PERIODS = {"30": 30, "90": 90, "365": 365}
SORTS = ("updated", "created", "number", "subject", "status", "priority")
#: The direction a column sorts in when first chosen (newest, highest first).
FIRST_DIRECTION = {"updated": "desc", "created": "desc", "number": "desc",
                   "subject": "asc", "status": "asc", "priority": "desc"}
#: The longest search text taken (more is cut, not refused).
MAX_TEXT = 200
#: The highest page number looked at (a silly ?page= is no large OFFSET).
MAX_PAGE = 10_000

DEFAULT_TAB, DEFAULT_STATUS, DEFAULT_SORT = "mine", "open", "updated"


@dataclass(frozen=True)
class ListQuery:
    tab: str = DEFAULT_TAB
    status: str = DEFAULT_STATUS
    period: str = ""  # a PERIODS key, or "" for any time
    request_type: str = ""  # a REQUEST_TYPES value, or "" for every type
    text: str = ""
    sort: str = DEFAULT_SORT
    direction: str = "desc"
    page: int = 1

    @property
    def filtered(self) -> bool:
        """Whether anything narrows the list beyond the status tab."""
        return bool(self.period or self.request_type or self.text)

    def opened_since(self, now: datetime) -> datetime | None:
        days = PERIODS.get(self.period)
        return now - timedelta(days=days) if days else None


def _page(raw: str | None) -> int:
    try:
        number = int((raw or "1").strip())
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def _text(raw: str | None) -> str:
    """The search text: printable, one line, whitespace collapsed, cut at MAX_TEXT."""
    cleaned = "".join(c if c.isprintable() else " " for c in (raw or ""))
    return " ".join(cleaned.split())[:MAX_TEXT]


def parse(values: Mapping[str, str], sees_organisation: bool) -> ListQuery:
    """The view a query string asks for; `sees_organisation`: whether the
    customer has the organisation tab (access.scope "organisation")."""
    tab = values.get("tab", DEFAULT_TAB)
    if tab not in TABS or (tab == "organisation" and not sees_organisation):
        tab = DEFAULT_TAB
    status = values.get("status", DEFAULT_STATUS)
    sort = values.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    direction = values.get("dir", "")
    if direction not in ("asc", "desc"):
        direction = FIRST_DIRECTION[sort]
    return ListQuery(
        tab=tab, status=status if status in STATUS_FILTERS else DEFAULT_STATUS,
        period=values.get("period", "") if values.get("period", "") in PERIODS else "",
        request_type=(values.get("type", "") if values.get("type", "") in REQUEST_TYPES
                      else ""),
        text=_text(values.get("q")), sort=sort, direction=direction,
        page=_page(values.get("page")))


def url(base: str, query: ListQuery, **changes: object) -> str:
    """The address of `query` with `changes` (a changed filter starts at
    page 1 unless the page is the change); defaults are left out."""
    if "page" not in changes:
        changes["page"] = 1
    wanted = replace(query, **changes)  # type: ignore[arg-type]
    params = {"tab": wanted.tab if wanted.tab != DEFAULT_TAB else "",
              "status": wanted.status, "period": wanted.period,
              "type": wanted.request_type, "q": wanted.text,
              "sort": wanted.sort if wanted.sort != DEFAULT_SORT else "",
              "dir": wanted.direction if wanted.direction != FIRST_DIRECTION[wanted.sort]
              else "",
              "page": str(wanted.page) if wanted.page > 1 else ""}
    return base + "?" + urlencode({k: v for k, v in params.items() if v})


def sort_url(base: str, query: ListQuery, column: str) -> str:
    """A column heading's link: that column in its first direction, or the
    other direction when it is the column sorted by already."""
    if query.sort == column:
        return url(base, query, direction="asc" if query.direction == "desc" else "desc")
    return url(base, query, sort=column, direction=FIRST_DIRECTION[column])
