"""The reports' arithmetic without a database: periods (UTC days, ISO weeks,
months), the checked range, tickets counted per key, ratings with their
reasons in the right bucket, and SLA times measured by schedule/sla.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildesk.config import CalendarSettings, SlaSettings
from maildesk.schedule.calendar import BusinessCalendar
from maildesk.schedule.sla import light
from maildesk.tickets.csat import RatingRow
from maildesk.tickets.reports import (
    DIMENSIONS,
    MAX_DAYS,
    NONE_KEY,
    PERIODS,
    InvalidReport,
    Span,
    TicketRow,
    csat_report,
    nearest_rank,
    parse_day,
    period_of,
    sla_report,
    span,
    tickets_report,
    times,
)

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = date(2026, 3, 11)
MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))


def ticket(number: int, created_at: datetime, channel: str = "email",
           category: str | None = None, status: str = "new", **extra: object) -> TicketRow:
    return TicketRow(number, created_at, channel, category, "user_help", status, **extra)


# -- periods and ranges ----------------------------------------------------------------------


def test_period_labels_are_utc_days_iso_weeks_and_months() -> None:
    # 00:30 in Berlin on 1 March is still 28 February in UTC
    moment = datetime(2026, 3, 1, 0, 30, tzinfo=BERLIN)
    assert period_of(moment, "day").label == "2026-02-28"
    assert period_of(moment, "month").label == "2026-02"
    assert period_of(datetime(2027, 1, 1, tzinfo=UTC), "week").label == "2026-W53"
    assert period_of(datetime(2027, 1, 1, tzinfo=UTC), "week").start == date(2026, 12, 28)
    assert period_of(moment, None).label is None
    assert period_of(datetime(2026, 3, 1, 12), "day").label == "2026-03-01"  # naive: UTC


@given(MOMENTS, st.sampled_from(PERIODS))
def test_a_moment_lies_in_its_period_and_later_periods_sort_later(moment: datetime,
                                                                  period: str) -> None:
    found = period_of(moment, period)
    assert found.start is not None and found.label is not None
    assert found.start <= moment.date()
    assert found.start.weekday() == 0 if period == "week" else True
    assert found.start.day == 1 if period == "month" else True
    assert period_of(datetime.combine(found.start, datetime.min.time(), UTC),
                     period) == found  # the period begins on its start day
    later = period_of(moment + timedelta(days=1), period)
    assert later.label is not None and later.label >= found.label


@pytest.mark.parametrize("text", ["20260301", "2026-W10-1", "2026-02-30", "1.3.2026", "",
                                  "2026-03-01T10:00", "\u0662\u0660\u0662\u0666-03-01"])
def test_only_a_calendar_day_is_a_day(text: str) -> None:
    with pytest.raises(InvalidReport) as refused:
        parse_day(text, "from")
    assert refused.value.field == "from"
    assert parse_day("2026-03-01", "from") == date(2026, 3, 1)


def test_the_range_is_checked() -> None:
    with pytest.raises(InvalidReport, match="after until") as refused:
        span(date(2026, 3, 2), date(2026, 3, 1), None, TODAY)
    assert refused.value.field == "from"
    longest = TODAY - timedelta(days=MAX_DAYS - 1)
    assert span(longest, None, "day", TODAY) == Span(longest, None)
    with pytest.raises(InvalidReport, match="period=day") as refused:
        span(longest - timedelta(days=1), None, "day", TODAY)
    assert refused.value.field == "from"
    assert span(date(1990, 1, 1), TODAY, "week", TODAY).start == date(1990, 1, 1)
    with pytest.raises(InvalidReport):
        span(None, None, "year", TODAY)


def test_until_takes_its_whole_day_and_the_last_day_of_the_calendar_is_no_overflow() -> None:
    within = Span(date(2026, 3, 1), date(2026, 3, 1))
    assert within.contains(datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC))
    assert not within.contains(datetime(2026, 3, 2, tzinfo=UTC))
    assert not within.contains(datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    assert Span(date(2026, 3, 1), date.max).bounds()[1] is None
    assert Span(date.min, date.max).contains(datetime(2026, 3, 1, tzinfo=UTC))


# -- tickets -----------------------------------------------------------------------------------


def test_three_calls_and_two_mails_this_week() -> None:
    monday = datetime(2026, 3, 9, 9, tzinfo=UTC)
    rows = [ticket(n, monday + timedelta(days=n), "phone") for n in range(3)]
    rows += [ticket(10 + n, monday + timedelta(hours=n), "email") for n in range(2)]
    rows.append(ticket(20, monday - timedelta(days=1), "phone"))  # Sunday: last week
    report = tickets_report(rows, "channel", "week", Span(date(2026, 3, 9), date(2026, 3, 15)))
    assert (report["from"], report["until"], report["total"]) == ("2026-03-09", "2026-03-15", 5)
    assert [(g["period"], g["start"], g["key"], g["tickets"]) for g in report["groups"]] == [
        ("2026-W11", "2026-03-09", "phone", 3), ("2026-W11", "2026-03-09", "email", 2)]
    everything = tickets_report(rows, None, None)
    assert everything["groups"] == [{"period": None, "start": None, "key": "all",
                                     "tickets": 6}]


def test_a_ticket_without_a_category_is_counted_under_none() -> None:
    day = datetime(2026, 3, 9, tzinfo=UTC)
    rows = [ticket(1, day, category="Drucker"), ticket(2, day), ticket(3, day)]
    report = tickets_report(rows, "category", None)
    assert [(g["key"], g["tickets"]) for g in report["groups"]] == [(NONE_KEY, 2),
                                                                   ("Drucker", 1)]
    with pytest.raises(ValueError, match="unknown grouping"):
        tickets_report(rows, "priority", None)


ROWS = st.lists(st.builds(
    ticket, st.integers(1, 10**6), MOMENTS, st.sampled_from(["email", "phone", "web"]),
    st.sampled_from([None, "Drucker", "Netz"]),
    st.sampled_from(["new", "open", "pending", "solved", "closed"])), max_size=40)


@given(ROWS, st.sampled_from((None, *DIMENSIONS)), st.sampled_from((None, *PERIODS)),
       st.dates(date(2000, 1, 1), date(2100, 1, 1)), st.integers(0, 20_000))
def test_every_ticket_in_the_range_is_counted_once(rows: list[TicketRow], by: str | None,
                                                    period: str | None, start: date,
                                                    days: int) -> None:
    within = Span(start, start + timedelta(days=days))
    report = tickets_report(rows, by, period, within)
    inside = [r for r in rows if within.contains(r.created_at)]
    assert report["total"] == len(inside) == sum(g["tickets"] for g in report["groups"])
    cells = [(g["period"], g["key"]) for g in report["groups"]]
    assert len(cells) == len(set(cells))
    starts = [g["start"] or "" for g in report["groups"]]
    assert starts == sorted(starts)  # periods oldest first


# -- satisfaction ----------------------------------------------------------------------------


def rating(ticket: int, score: int, agent: str | None, reason: str = "",
           rated_at: datetime = datetime(2026, 3, 10, 12, tzinfo=UTC)) -> RatingRow:
    return RatingRow(score, agent, "1st-level", "user_help", bool(reason), ticket, reason,
                     rated_at)


def test_a_reason_is_listed_in_its_agents_bucket_newest_first() -> None:
    rows = [rating(1, 2, "anna@example.com", "zu langsam"),
            rating(2, 5, "anna@example.com"),
            rating(3, 1, "anna@example.com", "unfreundlich",
                   datetime(2026, 3, 11, 9, tzinfo=UTC)),
            rating(4, 4, "bert@example.com"),
            rating(5, 1, None, "keiner da")]
    report = csat_report(rows, "agent", None)
    anna, nobody, bert = report["groups"]  # biggest first, then by key
    assert (anna["key"], anna["ratings"], anna["with_reason"]) == ("anna@example.com", 3, 2)
    assert [(r["ticket"], r["reason"], r["rating"]) for r in anna["reasons"]] == [
        (3, "unfreundlich", "very_dissatisfied"), (1, "zu langsam", "dissatisfied")]
    assert anna["reasons"][0]["rated_at"] == "2026-03-11T09:00:00+00:00"
    assert (bert["key"], bert["reasons"]) == ("bert@example.com", [])
    assert (nobody["key"], [r["reason"] for r in nobody["reasons"]]) == (
        NONE_KEY, ["keiner da"])
    assert report["total"] == 5


def test_ratings_per_day_keep_csat_summarize_figures() -> None:
    rows = [rating(1, 5, "a"), rating(2, 1, "a", "x", datetime(2026, 3, 11, tzinfo=UTC))]
    report = csat_report(rows, None, "day", Span(date(2026, 3, 10), date(2026, 3, 11)))
    assert [(g["period"], g["ratings"], g["average"], g["csat"]) for g in report["groups"]] == [
        ("2026-03-10", 1, 5.0, 100.0), ("2026-03-11", 1, 1.0, 0.0)]
    assert csat_report(rows, None, None, Span(date(2026, 3, 12), None))["groups"] == []


@given(st.lists(st.builds(rating, st.integers(1, 999), st.integers(1, 5),
                          st.sampled_from([None, "a", "b"]), st.sampled_from(["", "warum"]),
                          MOMENTS), max_size=30),
       st.sampled_from((None, "agent", "group", "type")), st.sampled_from((None, *PERIODS)))
def test_every_reason_is_listed_once(rows: list[RatingRow], by: str | None,
                                     period: str | None) -> None:
    report = csat_report(rows, by, period)
    assert sum(g["ratings"] for g in report["groups"]) == len(rows)
    listed = [r for g in report["groups"] for r in g["reasons"]]
    assert len(listed) == sum(1 for r in rows if r.reason)
    assert all(g["with_reason"] == len(g["reasons"]) for g in report["groups"])


# -- SLA -----------------------------------------------------------------------------------


def measured(**kwargs: object) -> object:
    return type("M", (), kwargs)()


def test_times_count_met_breached_and_open() -> None:
    measures = [measured(state="green", elapsed_hours=h, done=True) for h in (1, 2, 3, 4)]
    measures += [measured(state="red", elapsed_hours=30.0, done=True),
                 measured(state="red", elapsed_hours=20.0, done=False),  # unanswered, late
                 measured(state="yellow", elapsed_hours=13.0, done=False)]
    assert times(measures) == {"count": 5, "median_hours": 3, "p90_hours": 30.0, "met": 4,
                               "breached": 2, "open": 1, "met_pct": 66.7}
    assert times([]) == {"count": 0, "median_hours": None, "p90_hours": None, "met": 0,
                         "breached": 0, "open": 0, "met_pct": None}


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0.01, 1))
def test_nearest_rank_is_a_value_with_that_share_at_or_below_it(values: list[float],
                                                                share: float) -> None:
    ordered = sorted(values)
    found = nearest_rank(ordered, share)
    assert found in ordered
    assert sum(1 for v in ordered if v <= found) >= share * len(ordered) - 1e-9
    assert sum(1 for v in ordered if v < found) < share * len(ordered) + 1e-9


def test_an_answer_after_the_target_is_breached_in_business_hours() -> None:
    settings, calendar = SlaSettings(), BusinessCalendar.from_settings(CalendarSettings())
    measure = partial(light, settings=settings, calendar=calendar)
    monday = datetime(2026, 3, 9, 8, tzinfo=BERLIN)  # opening time
    rows = [
        # answered Wednesday 12:00: 9 + 9 + 4 = 22 business hours > 16
        ticket(1, monday, first_response_at=monday + timedelta(days=2, hours=4)),
        # answered after two hours, solved after ten (Monday 9h + Tuesday 1h)
        ticket(2, monday, status="solved", first_response_at=monday + timedelta(hours=2),
               solved_at=monday + timedelta(days=1, hours=1)),
        # solved once, then reopened: not resolved
        ticket(3, monday, status="open", first_response_at=monday + timedelta(hours=1),
               solved_at=monday + timedelta(hours=3)),
    ]
    now = monday + timedelta(days=3)  # Thursday 08:00: 27 business hours on
    report = sla_report(rows, None, "week", Span(), now, measure, settings)
    assert report["targets"]["user_help"] == {"first_response_hours": 16,
                                              "resolution_hours": 80}
    [group] = report["groups"]
    assert (group["period"], group["tickets"]) == ("2026-W11", 3)
    assert group["first_response"] == {"count": 3, "median_hours": 2.0, "p90_hours": 22.0,
                                       "met": 2, "breached": 1, "open": 0, "met_pct": 66.7}
    assert group["resolution"] == {"count": 1, "median_hours": 10.0, "p90_hours": 10.0,
                                   "met": 1, "breached": 0, "open": 2, "met_pct": 100.0}
    # two weeks on (90 business hours) the unresolved ones passed their 80
    late = sla_report(rows, "status", None, Span(), monday + timedelta(days=14), measure,
                      settings)
    assert {g["key"]: g["resolution"]["breached"] for g in late["groups"]} == {
        "new": 1, "open": 1, "solved": 0}
