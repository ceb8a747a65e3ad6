"""The "My requests" address read into a view (pure): whatever is typed
into the address becomes a sensible view, and links keep the rest of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from maildesk.web.portal.list_query import ListQuery, parse, sort_url, url


def test_the_default_view_is_my_open_requests_newest_change_first() -> None:
    assert parse({}, sees_organisation=True) == ListQuery(
        tab="mine", status="open", period="", request_type="", text="", sort="updated",
        direction="desc", page=1)


def test_the_organisation_tab_only_for_a_customer_who_sees_it() -> None:
    assert parse({"tab": "organisation"}, sees_organisation=True).tab == "organisation"
    assert parse({"tab": "organisation"}, sees_organisation=False).tab == "mine"


def test_unknown_values_fall_back_instead_of_failing() -> None:
    query = parse({"tab": "admin", "status": "deleted", "period": "7000", "type": "spam",
                   "sort": "password", "dir": "sideways", "page": "-3"}, True)
    assert query == ListQuery()
    assert parse({"page": "x"}, True).page == 1
    assert parse({"page": "99999999999"}, True).page == 10_000


def test_search_text_is_one_printable_line_and_cut() -> None:
    assert parse({"q": "  Drucker\n\x00 Fehler\t42 "}, True).text == "Drucker Fehler 42"
    assert len(parse({"q": "a" * 5000}, True).text) == 200


def test_a_column_first_sorts_its_natural_way() -> None:
    assert parse({"sort": "subject"}, True).direction == "asc"
    assert parse({"sort": "number"}, True).direction == "desc"
    assert parse({"sort": "subject", "dir": "desc"}, True).direction == "desc"


def test_period_counts_back_from_now() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert parse({"period": "30"}, True).opened_since(now) == now - timedelta(days=30)
    assert parse({}, True).opened_since(now) is None


def _params(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def test_links_keep_the_filters_and_start_a_changed_view_on_page_one() -> None:
    query = parse({"status": "all", "q": "Drucker", "type": "incident", "page": "3",
                   "sort": "subject"}, True)
    changed = _params(url("/portal/", query, status="open"))
    assert changed == {"status": ["open"], "q": ["Drucker"], "type": ["incident"],
                       "sort": ["subject"]}
    assert _params(url("/portal/", query, page=4))["page"] == ["4"]
    assert parse({k: v[0] for k, v in _params(url("/portal/", query, page=3)).items()},
                 True) == query


def test_a_heading_link_turns_the_direction_of_the_column_sorted_by() -> None:
    query = parse({"sort": "subject"}, True)
    assert _params(sort_url("/portal/", query, "subject"))["dir"] == ["desc"]
    assert "dir" not in _params(sort_url("/portal/", query, "number"))
    assert _params(sort_url("/portal/", query, "number"))["sort"] == ["number"]
