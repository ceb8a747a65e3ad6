"""The time rules as pure functions: what is due, and the SQL cutoffs agree
with the business-day count they stand for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.config import CalendarSettings, RulesSettings
from maildesk.schedule.calendar import BusinessCalendar, business_days_between
from maildesk.schedule.rules import AUTO_CLOSE, REMINDER_1, REMINDER_2, Clock, due, pending_cutoff

CAL = BusinessCalendar.from_settings(CalendarSettings())
RULES = RulesSettings()
T0 = datetime(2026, 12, 18, 9, 0, tzinfo=UTC)  # a Friday before Christmas


@given(start=st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2027, 1, 31),
                          timezones=st.just(UTC)),
       later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
       days=st.integers(min_value=1, max_value=12))
@settings(max_examples=400, deadline=None)
def test_cutoff_matches_the_business_day_count(start: datetime, later: timedelta,
                                               days: int) -> None:
    now = start + later
    assert (start < pending_cutoff(now, CAL, days)) == (
        business_days_between(CAL, start, now) >= days)


@pytest.mark.parametrize(("clock", "now", "expected"), [
    # Christmas: the 24th is a working day in Germany, the 25th and 26th are
    # holidays, then a weekend: 21-24 and 28 December are the five days
    (Clock(1, "pending", T0, 0, None), datetime(2026, 12, 26, 12, 0, tzinfo=UTC), None),
    (Clock(1, "pending", T0, 0, None), datetime(2026, 12, 28, 12, 0, tzinfo=UTC), REMINDER_1),
    (Clock(1, "pending", T0, 1, None), datetime(2026, 12, 28, 12, 0, tzinfo=UTC), REMINDER_2),
    (Clock(1, "pending", T0, 2, None), datetime(2027, 2, 1, tzinfo=UTC), None),
    (Clock(1, "open", T0, 0, None), datetime(2027, 2, 1, tzinfo=UTC), None),
    (Clock(1, "solved", None, 0, T0), T0 + timedelta(days=13, hours=23), None),
    (Clock(1, "solved", None, 0, T0), T0 + timedelta(days=14), AUTO_CLOSE),
])
def test_what_is_due(clock: Clock, now: datetime, expected: str | None) -> None:
    assert due(clock, now, CAL, RULES) == expected
