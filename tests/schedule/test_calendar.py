"""Business days and hours in Europe/Berlin with Germany's public holidays.

Starts are written as Berlin wall-clock times and passed in as UTC instants (as maildesk
keeps them); expected results are the exact ISO strings, offset included, in Berlin time.
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from maildesk.config import CalendarSettings
from maildesk.schedule import calendar as calendar_module
from maildesk.schedule.calendar import (
    BusinessCalendar,
    add_business_days,
    add_business_hours,
    business_days_between,
    business_hours_between,
)

BERLIN = ZoneInfo("Europe/Berlin")


def cal(**overrides: object) -> BusinessCalendar:
    return BusinessCalendar.from_settings(CalendarSettings(**overrides))


def at(local: str) -> datetime:
    """A Berlin wall-clock time ("2026-03-27 09:00") as an aware UTC instant."""
    return datetime.fromisoformat(local).replace(tzinfo=BERLIN).astimezone(UTC)


NATIONAL = cal()
BAVARIA = cal(subdivision="BY")
NRW = cal(subdivision="NW")
BERLIN_STATE = cal(subdivision="BE")
XMAS_CLOSED = cal(closed_days=("2026-12-24", "2026-12-31"))
FOUR_DAYS = cal(workdays=(0, 1, 2, 3))  # Monday to Thursday
# Every day a workday, open 00:00-12:00: the DST switches fall inside opening hours.
ALWAYS_MORNINGS = cal(workdays=(0, 1, 2, 3, 4, 5, 6), business_hours=("00:00", "12:00"))
CALENDARS = {
    "national": NATIONAL,
    "bavaria": BAVARIA,
    "nrw": NRW,
    "berlin": BERLIN_STATE,
    "xmas-closed": XMAS_CLOSED,
    "four-days": FOUR_DAYS,
    "always-mornings": ALWAYS_MORNINGS,
}


# --- configuration -------------------------------------------------------------------------


def test_from_settings_defaults() -> None:
    assert NATIONAL.timezone == BERLIN
    assert NATIONAL.workdays == frozenset({0, 1, 2, 3, 4})
    assert NATIONAL.closed == frozenset()
    assert (NATIONAL.country, NATIONAL.subdivision) == ("DE", None)
    assert (NATIONAL.opens, NATIONAL.closes) == (time(8, 0), time(17, 0))


def test_from_settings_reads_closed_days_subdivision_and_hours() -> None:
    built = cal(
        subdivision="by",
        closed_days=(" 2026-12-24", "2026-12-31"),
        business_hours=("07:30", "16:15"),
        workdays=(3, 0, 1, 2),
    )
    assert built.subdivision == "BY"
    assert built.closed == frozenset({date(2026, 12, 24), date(2026, 12, 31)})
    assert (built.opens, built.closes) == (time(7, 30), time(16, 15))
    assert built.workdays == frozenset({0, 1, 2, 3})


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "calendar.timezone"),
        ({"timezone": ""}, "calendar.timezone"),
        ({"timezone": "../etc/passwd"}, "calendar.timezone"),
        ({"country": "XX"}, "calendar.country"),
        ({"country": ""}, "calendar.country"),
        ({"subdivision": "XY"}, "calendar.subdivision"),
        ({"closed_days": ("2026-13-01",)}, "calendar.closed_days"),
        ({"closed_days": ("24.12.2026",)}, "calendar.closed_days"),
        ({"business_hours": ("17:00", "08:00")}, "calendar.business_hours"),
        ({"business_hours": ("08:00", "08:00")}, "calendar.business_hours"),
        ({"business_hours": ("8 Uhr", "17:00")}, "calendar.business_hours"),
        ({"business_hours": ("08:00", "17:00+01:00")}, "calendar.business_hours"),
    ],
)
def test_config_errors_name_the_key(overrides: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        cal(**overrides)


def test_direct_construction_rejects_closes_before_opens() -> None:
    with pytest.raises(ValueError, match="after opens"):
        BusinessCalendar(BERLIN, frozenset({0}), frozenset(), "DE", None, time(17), time(8))


# --- business days and holiday names -------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "day", "business", "name"),
    [
        (NATIONAL, "2026-12-23", True, None),
        (NATIONAL, "2026-12-24", True, None),  # Heiligabend: no public holiday in DE
        (NATIONAL, "2026-12-25", False, "Erster Weihnachtstag"),
        (NATIONAL, "2026-12-26", False, "Zweiter Weihnachtstag"),  # also a Saturday
        (NATIONAL, "2026-12-31", True, None),
        (NATIONAL, "2027-01-01", False, "Neujahr"),
        (XMAS_CLOSED, "2026-12-24", False, None),  # closed day, not a holiday
        (XMAS_CLOSED, "2026-12-31", False, None),
        (XMAS_CLOSED, "2027-12-24", True, None),  # closed_days are dates, not yearly
        (NATIONAL, "2026-04-02", True, None),
        (NATIONAL, "2026-04-03", False, "Karfreitag"),
        (NATIONAL, "2026-04-06", False, "Ostermontag"),
        (NATIONAL, "2026-05-01", False, "Erster Mai"),
        (NATIONAL, "2026-01-06", True, None),
        (BAVARIA, "2026-01-06", False, "Heilige Drei Könige"),
        (NATIONAL, "2026-06-04", True, None),
        (BAVARIA, "2026-06-04", False, "Fronleichnam"),
        (NRW, "2026-06-04", False, "Fronleichnam"),
        (BERLIN_STATE, "2026-06-04", True, None),
        (NATIONAL, "2026-03-07", False, None),  # Saturday
        (NATIONAL, "2026-03-08", False, None),  # Sunday
        (FOUR_DAYS, "2026-03-05", True, None),  # Thursday
        (FOUR_DAYS, "2026-03-06", False, None),  # Friday
        (ALWAYS_MORNINGS, "2026-03-29", True, None),  # Sunday
    ],
)
def test_is_business_day_and_holiday_name(
    calendar: BusinessCalendar, day: str, business: bool, name: str | None
) -> None:
    assert calendar.is_business_day(date.fromisoformat(day)) is business
    assert calendar.holiday_name(date.fromisoformat(day)) == name


# --- add_business_days / business_days_between ---------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "start", "days", "expected"),
    [
        # Christmas / New Year 2026: 24.12. Thu, 25.12. Fri, 31.12. Thu, 1.1.2027 Fri.
        (NATIONAL, "2026-12-23 10:00", 1, "2026-12-24T10:00:00+01:00"),
        (NATIONAL, "2026-12-23 10:00", 2, "2026-12-28T10:00:00+01:00"),
        (NATIONAL, "2026-12-23 10:00", 5, "2026-12-31T10:00:00+01:00"),
        (NATIONAL, "2026-12-23 10:00", 6, "2027-01-04T10:00:00+01:00"),
        (XMAS_CLOSED, "2026-12-23 10:00", 1, "2026-12-28T10:00:00+01:00"),
        (XMAS_CLOSED, "2026-12-23 10:00", 4, "2027-01-04T10:00:00+01:00"),
        # Easter 2026: Good Friday 3.4., Easter Monday 6.4.
        (NATIONAL, "2026-04-02 09:00", 1, "2026-04-07T09:00:00+02:00"),
        (NATIONAL, "2026-04-01 09:00", 2, "2026-04-07T09:00:00+02:00"),
        (NATIONAL, "2026-03-30 10:00", 5, "2026-04-08T10:00:00+02:00"),  # pending reminder
        (NATIONAL, "2026-04-03 09:00", 1, "2026-04-07T09:00:00+02:00"),  # start on holiday
        # 1 May 2026 is a Friday.
        (NATIONAL, "2026-04-30 15:00", 1, "2026-05-04T15:00:00+02:00"),
        # Regional holidays.
        (NATIONAL, "2026-01-05 09:00", 1, "2026-01-06T09:00:00+01:00"),
        (BAVARIA, "2026-01-05 09:00", 1, "2026-01-07T09:00:00+01:00"),
        (NATIONAL, "2026-06-03 09:00", 1, "2026-06-04T09:00:00+02:00"),
        (BAVARIA, "2026-06-03 09:00", 1, "2026-06-05T09:00:00+02:00"),
        (NRW, "2026-06-03 09:00", 1, "2026-06-05T09:00:00+02:00"),
        (BERLIN_STATE, "2026-06-03 09:00", 1, "2026-06-04T09:00:00+02:00"),
        # DST: 09:00 local stays 09:00 (the UTC hour changes).
        (NATIONAL, "2026-03-27 09:00", 1, "2026-03-30T09:00:00+02:00"),
        (NATIONAL, "2026-10-23 09:00", 1, "2026-10-26T09:00:00+01:00"),
        (NATIONAL, "2026-03-20 09:00", 10, "2026-04-07T09:00:00+02:00"),
        # A wall-clock time inside the spring gap moves forward; the autumn one is the first.
        (ALWAYS_MORNINGS, "2026-03-28 02:30", 1, "2026-03-29T03:30:00+02:00"),
        (ALWAYS_MORNINGS, "2026-10-24 02:30", 1, "2026-10-25T02:30:00+02:00"),
        # Start on a weekend: counting starts the next day, the time of day is kept.
        (NATIONAL, "2026-03-07 10:00", 1, "2026-03-09T10:00:00+01:00"),
        (NATIONAL, "2026-03-08 10:00", 1, "2026-03-09T10:00:00+01:00"),
        (NATIONAL, "2026-03-07 10:00", 0, "2026-03-07T10:00:00+01:00"),
        # Start after closing time: days keep the time of day.
        (NATIONAL, "2026-03-06 18:00", 1, "2026-03-09T18:00:00+01:00"),
        (NATIONAL, "2026-03-05 23:30", 1, "2026-03-06T23:30:00+01:00"),
        # Four-day week (Mon-Thu).
        (FOUR_DAYS, "2026-03-05 10:00", 1, "2026-03-09T10:00:00+01:00"),
        (FOUR_DAYS, "2026-03-04 10:00", 2, "2026-03-09T10:00:00+01:00"),
        (FOUR_DAYS, "2026-04-30 10:00", 1, "2026-05-04T10:00:00+02:00"),
        (FOUR_DAYS, "2026-03-02 10:00", 8, "2026-03-16T10:00:00+01:00"),
    ],
)
def test_add_business_days(
    calendar: BusinessCalendar, start: str, days: int, expected: str
) -> None:
    result = add_business_days(calendar, at(start), days)
    assert result.isoformat() == expected
    assert result.tzinfo == BERLIN
    assert business_days_between(calendar, at(start), result) == days


def test_add_business_days_uses_the_local_date_not_utc() -> None:
    # 2026-03-08 23:30 UTC is Monday 00:30 in Berlin: counting starts on Tuesday.
    start = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    assert add_business_days(NATIONAL, start, 1).isoformat() == "2026-03-10T00:30:00+01:00"


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [
        (NATIONAL, "2026-12-23 10:00", "2027-01-04 10:00", 6),
        (XMAS_CLOSED, "2026-12-23 10:00", "2027-01-04 10:00", 4),
        (NATIONAL, "2026-04-02 09:00", "2026-04-07 09:00", 1),
        (NATIONAL, "2026-04-02 09:00", "2026-04-06 23:59", 0),
        (NATIONAL, "2026-04-02 09:00", "2026-04-07 00:00", 1),  # counts whole local dates
        (NATIONAL, "2026-03-27 09:00", "2026-03-30 09:00", 1),
        (NATIONAL, "2026-03-02 00:00", "2026-03-31 00:00", 21),
        (BAVARIA, "2026-01-01 00:00", "2026-01-31 00:00", 20),
        (NATIONAL, "2026-01-01 00:00", "2026-01-31 00:00", 21),
        (FOUR_DAYS, "2026-03-01 00:00", "2026-03-31 00:00", 18),
        (NATIONAL, "2026-03-09 08:00", "2026-03-09 17:00", 0),  # same day
        (NATIONAL, "2026-03-10 10:00", "2026-03-09 10:00", 0),  # end before start
        (NATIONAL, "2026-03-10 10:00", "2026-03-10 10:00", 0),
    ],
)
def test_business_days_between(
    calendar: BusinessCalendar, start: str, end: str, expected: int
) -> None:
    assert business_days_between(calendar, at(start), at(end)) == expected


# --- add_business_hours / business_hours_between -------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "start", "hours", "expected"),
    [
        (NATIONAL, "2026-03-05 10:00", 2, "2026-03-05T12:00:00+01:00"),
        (NATIONAL, "2026-03-05 08:00", 9, "2026-03-05T17:00:00+01:00"),  # ends at closing
        (NATIONAL, "2026-03-05 08:00", 9.5, "2026-03-06T08:30:00+01:00"),
        (NATIONAL, "2026-03-05 10:00", 0, "2026-03-05T10:00:00+01:00"),
        (NATIONAL, "2026-03-06 16:00", 2, "2026-03-09T09:00:00+01:00"),  # over the weekend
        (NATIONAL, "2026-03-06 16:00", 0.25, "2026-03-06T16:15:00+01:00"),
        # Start on a Saturday / after closing / before opening: from the next opening.
        (NATIONAL, "2026-03-07 10:00", 1, "2026-03-09T09:00:00+01:00"),
        (NATIONAL, "2026-03-07 10:00", 0, "2026-03-09T08:00:00+01:00"),
        (NATIONAL, "2026-03-05 18:00", 1, "2026-03-06T09:00:00+01:00"),
        (NATIONAL, "2026-03-06 17:00", 0, "2026-03-09T08:00:00+01:00"),
        (NATIONAL, "2026-03-05 06:00", 1, "2026-03-05T09:00:00+01:00"),
        # Holidays.
        (NATIONAL, "2026-04-02 16:30", 1, "2026-04-07T08:30:00+02:00"),
        (NATIONAL, "2026-04-30 16:00", 3, "2026-05-04T10:00:00+02:00"),
        (NATIONAL, "2026-06-03 16:30", 1, "2026-06-04T08:30:00+02:00"),
        (BAVARIA, "2026-06-03 16:30", 1, "2026-06-05T08:30:00+02:00"),
        (NATIONAL, "2026-12-23 16:30", 1, "2026-12-24T08:30:00+01:00"),
        (XMAS_CLOSED, "2026-12-23 16:30", 1, "2026-12-28T08:30:00+01:00"),
        (XMAS_CLOSED, "2026-12-30 16:00", 2, "2027-01-04T09:00:00+01:00"),
        # DST weekends.
        (NATIONAL, "2026-03-27 16:00", 2, "2026-03-30T09:00:00+02:00"),
        (NATIONAL, "2026-10-23 16:00", 2, "2026-10-26T09:00:00+01:00"),
        # DST inside opening hours (00:00-12:00 every day): real elapsed hours count.
        (ALWAYS_MORNINGS, "2026-03-29 00:00", 11, "2026-03-29T12:00:00+02:00"),
        (ALWAYS_MORNINGS, "2026-03-29 00:00", 3, "2026-03-29T04:00:00+02:00"),
        (ALWAYS_MORNINGS, "2026-10-25 00:00", 13, "2026-10-25T12:00:00+01:00"),
        (ALWAYS_MORNINGS, "2026-10-25 00:00", 3, "2026-10-25T02:00:00+01:00"),
        # Four-day week.
        (FOUR_DAYS, "2026-03-05 16:00", 2, "2026-03-09T09:00:00+01:00"),
    ],
)
def test_add_business_hours(
    calendar: BusinessCalendar, start: str, hours: float, expected: str
) -> None:
    result = add_business_hours(calendar, at(start), hours)
    assert result.isoformat() == expected
    assert result.tzinfo == BERLIN


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [
        (NATIONAL, "2026-03-05 10:00", "2026-03-05 12:30", 2.5),
        (NATIONAL, "2026-03-05 06:00", "2026-03-05 20:00", 9.0),
        (NATIONAL, "2026-03-06 16:00", "2026-03-09 09:00", 2.0),
        (NATIONAL, "2026-03-07 10:00", "2026-03-08 10:00", 0.0),  # weekend only
        (NATIONAL, "2026-03-05 18:00", "2026-03-06 07:59", 0.0),  # overnight
        (NATIONAL, "2026-03-06 12:00", "2026-03-05 12:00", 0.0),  # end before start
        (NATIONAL, "2026-04-02 16:30", "2026-04-07 08:30", 1.0),  # Easter
        (NATIONAL, "2026-04-30 16:00", "2026-05-04 10:00", 3.0),  # 1 May on a Friday
        (BAVARIA, "2026-06-03 08:00", "2026-06-05 17:00", 18.0),  # Fronleichnam
        (NATIONAL, "2026-06-03 08:00", "2026-06-05 17:00", 27.0),
        (NATIONAL, "2026-12-23 08:00", "2027-01-05 08:00", 63.0),  # 23,24,28-31.12., 4.1.
        (XMAS_CLOSED, "2026-12-23 08:00", "2027-01-05 08:00", 45.0),
        # A month: March 2026 has 22 weekdays, April 2026 20 after Easter.
        (NATIONAL, "2026-03-01 00:00", "2026-04-01 00:00", 198.0),
        (NATIONAL, "2026-04-01 00:00", "2026-05-01 00:00", 180.0),
        (FOUR_DAYS, "2026-03-01 00:00", "2026-04-01 00:00", 162.0),
        # DST weekends and DST inside opening hours.
        (NATIONAL, "2026-03-27 16:00", "2026-03-30 09:00", 2.0),
        (NATIONAL, "2026-10-23 16:00", "2026-10-26 09:00", 2.0),
        (ALWAYS_MORNINGS, "2026-03-29 00:00", "2026-03-29 12:00", 11.0),
        (ALWAYS_MORNINGS, "2026-10-25 00:00", "2026-10-25 12:00", 13.0),
        (ALWAYS_MORNINGS, "2026-03-28 11:00", "2026-03-29 04:00", 4.0),
        (ALWAYS_MORNINGS, "2026-03-28 11:00", "2026-03-30 01:00", 13.0),
    ],
)
def test_business_hours_between(
    calendar: BusinessCalendar, start: str, end: str, expected: float
) -> None:
    assert business_hours_between(calendar, at(start), at(end)) == pytest.approx(
        expected, abs=1e-9
    )


def test_input_zone_does_not_matter() -> None:
    new_york = ZoneInfo("America/New_York")
    start = at("2026-03-06 16:00").astimezone(new_york)
    assert add_business_hours(NATIONAL, start, 2).isoformat() == "2026-03-09T09:00:00+01:00"
    assert add_business_days(NATIONAL, start, 1).isoformat() == "2026-03-09T16:00:00+01:00"


# --- bad input -----------------------------------------------------------------------------

NAIVE = datetime(2026, 3, 5, 10, 0)
AWARE = at("2026-03-05 10:00")


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_days(NATIONAL, NAIVE, 1),
        lambda: business_days_between(NATIONAL, NAIVE, AWARE),
        lambda: business_days_between(NATIONAL, AWARE, NAIVE),
        lambda: add_business_hours(NATIONAL, NAIVE, 1),
        lambda: business_hours_between(NATIONAL, NAIVE, AWARE),
        lambda: business_hours_between(NATIONAL, AWARE, NAIVE),
    ],
)
def test_naive_datetimes_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: add_business_days(NATIONAL, AWARE, -1),
        lambda: add_business_hours(NATIONAL, AWARE, -0.5),
        lambda: add_business_hours(NATIONAL, AWARE, float("nan")),
        lambda: add_business_hours(NATIONAL, AWARE, float("inf")),
    ],
)
def test_negative_or_non_finite_amounts_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


# --- properties ----------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2029, 12, 31),
    timezones=st.sampled_from([UTC, BERLIN, ZoneInfo("America/New_York")]),
)
calendars = st.sampled_from(list(CALENDARS.values()))


@settings(max_examples=400, deadline=None)
@given(calendar=calendars, start=starts, days=st.integers(min_value=0, max_value=70))
# Found by hypothesis: 02:00 CEST on the day the clocks go back (the repeated hour).
@example(calendar=NATIONAL, start=datetime(2024, 10, 27, 0, 0, tzinfo=UTC), days=0)
def test_property_days_between_inverts_add_days(
    calendar: BusinessCalendar, start: datetime, days: int
) -> None:
    start = start.astimezone(UTC)  # compare instants, not Berlin wall clocks
    end = add_business_days(calendar, start, days)
    assert business_days_between(calendar, start, end) == days
    local_start = start.astimezone(calendar.timezone)
    if days:
        assert end > start
        assert calendar.is_business_day(end.date())
        if end.time() != local_start.time():  # only a time inside a spring gap moves
            assert _in_spring_gap(calendar, end.date(), local_start.time())
    else:
        # As instants: PEP 495 makes an inter-zone == False for a time in the
        # autumn's repeated hour, even when both name the same instant.
        assert end.astimezone(UTC) == start


def _in_spring_gap(calendar: BusinessCalendar, day: date, clock: time) -> bool:
    naive = datetime.combine(day, clock.replace(fold=0))
    round_trip = naive.replace(tzinfo=calendar.timezone).astimezone(UTC)
    return round_trip.astimezone(calendar.timezone).replace(tzinfo=None) != naive


@settings(max_examples=400, deadline=None)
@given(
    calendar=calendars,
    start=starts,
    hours=st.floats(min_value=0, max_value=400, allow_nan=False, allow_infinity=False),
)
def test_property_hours_between_inverts_add_hours(
    calendar: BusinessCalendar, start: datetime, hours: float
) -> None:
    start = start.astimezone(UTC)  # compare instants, not Berlin wall clocks
    end = add_business_hours(calendar, start, hours)
    assert end >= start
    assert business_hours_between(calendar, start, end) == pytest.approx(hours, abs=1e-6)
    # The end lies inside (or on the edge of) opening hours of a business day.
    local_end = end.astimezone(calendar.timezone)
    assert calendar.is_business_day(local_end.date())
    assert calendar.opens <= local_end.time() <= calendar.closes


@settings(max_examples=200, deadline=None)
@given(
    calendar=calendars,
    start=starts,
    gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)),
)
def test_property_add_hours_inverts_hours_between(
    calendar: BusinessCalendar, start: datetime, gap: timedelta
) -> None:
    start = start.astimezone(UTC)  # UTC arithmetic: real elapsed time
    end = start + gap
    hours = business_hours_between(calendar, start, end)
    assert 0 <= hours <= gap / timedelta(hours=1) + 1e-9
    reached = add_business_hours(calendar, start, hours)
    if hours > 0:  # with 0 hours, `reached` is the next opening, which may be after `end`
        assert reached <= end
    assert business_hours_between(calendar, start, reached) == pytest.approx(hours, abs=1e-6)
    assert business_hours_between(calendar, reached, end) == pytest.approx(0, abs=1e-6)


# --- performance ---------------------------------------------------------------------------


def test_holiday_tables_are_cached_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    real = holidays.country_holidays

    def counting(*args: object, **kwargs: object) -> object:
        calls.append((args, kwargs.get("years")))
        return real(*args, **kwargs)

    monkeypatch.setattr(calendar_module.holidays, "country_holidays", counting)
    calendar_module._holiday_table.cache_clear()
    day = date(2031, 1, 1)
    for _ in range(2 * 365):
        NRW.is_business_day(day)
        NRW.holiday_name(day)
        day += timedelta(days=1)
    table_builds = [c for c in calls if c[1] is not None]
    assert len(table_builds) == 2  # 2031 and 2032, once each


def test_typical_calls_are_fast() -> None:
    start, month_later = at("2026-03-27 10:00"), at("2026-04-27 10:00")
    add_business_days(NATIONAL, start, 20)  # warm the holiday cache
    runs = 2000
    began = timer.perf_counter()
    for _ in range(runs):
        add_business_days(NATIONAL, start, 20)
    days_each = (timer.perf_counter() - began) / runs
    began = timer.perf_counter()
    for _ in range(runs):
        business_hours_between(NATIONAL, start, month_later)
    hours_each = (timer.perf_counter() - began) / runs
    # Budget 0.2 ms; typical is far below. A generous bound so a busy machine does not flake.
    assert days_each < 1e-3, f"add_business_days(20): {days_each * 1e6:.0f} µs"
    assert hours_each < 1e-3, f"business_hours_between(month): {hours_each * 1e6:.0f} µs"
