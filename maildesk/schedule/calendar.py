"""Business days and business hours: pure functions over plain data.

A :class:`BusinessCalendar` knows the local time zone, the working weekdays, the public
holidays of a country (and optionally one subdivision, e.g. ``DE``/``BY``) and extra closed
days, plus the daily opening hours. Nothing here touches a database, the network or a broker.

Definitions (every datetime in and out is timezone-aware; naive ones raise ``ValueError``):

* A **business day** is a local date whose weekday is a workday, that is not a public holiday
  of the configured country/subdivision and not a configured closed day.
* ``add_business_days(cal, start, n)``: take ``start``'s *local* date and time of day in the
  calendar's zone. Counting starts on the local day *after* ``start``; every business day
  counts one, other days are skipped; the result is the ``n``-th business day at the same
  local wall-clock time as ``start`` (so 09:00 stays 09:00 across a DST change). ``n == 0``
  returns ``start`` itself (converted to the calendar's zone). The day ``start`` falls on is
  never counted, whether or not it is a business day: Saturday 10:00 + 1 = Monday 10:00,
  Friday 18:00 + 1 = Monday 18:00. If that wall-clock time does not exist on the target day
  (inside a spring-forward gap) it is moved forward by the gap (02:30 -> 03:30); if it occurs
  twice (autumn fall-back) the first occurrence is used.
* ``business_days_between(cal, start, end)``: the number of business days ``d`` with
  ``local(start).date() < d <= local(end).date()``; 0 if ``end <= start``. Hence
  ``business_days_between(cal, s, add_business_days(cal, s, n)) == n``.
* Opening hours of a business day ``d`` are the instants from ``d`` at ``opens`` to ``d`` at
  ``closes`` (local wall-clock). Business hours are *elapsed real time* inside these windows.
* ``add_business_hours(cal, start, h)``: move forward through opening hours only. A start
  outside opening hours begins at the next opening (so ``h == 0`` outside hours returns the
  next opening). Landing exactly on a closing time returns that closing time, not the next
  opening.
* ``business_hours_between(cal, start, end)``: opening hours elapsed between two instants
  (0.0 if ``end <= start``); ``business_hours_between(cal, s, add_business_hours(cal, s, h))``
  equals ``h`` up to microsecond rounding.

Holiday tables are cached per (country, subdivision, year), so the functions above only do
set look-ups and a little datetime arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import islice
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

if TYPE_CHECKING:
    from maildesk.config import CalendarSettings

__all__ = [
    "BusinessCalendar",
    "add_business_days",
    "add_business_hours",
    "business_days_between",
    "business_hours_between",
]

_ONE_DAY = timedelta(days=1)
# More consecutive non-business days than this means the calendar has none left.
_MAX_CLOSED_RUN = 3 * 366
_MICROSECONDS_PER_HOUR = 3_600_000_000


@cache
def _default_language(country: str) -> str | None:
    return getattr(holidays.country_holidays(country), "default_language", None)


@lru_cache(maxsize=1024)
def _holiday_table(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    """Public holidays of one year, names in the country's own language."""
    table = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=_default_language(country)
    )
    return MappingProxyType({day: name for day, name in table.items() if day.year == year})


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: ZoneInfo
    workdays: frozenset[int]
    closed: frozenset[date]
    country: str
    subdivision: str | None
    opens: time
    closes: time

    def __post_init__(self) -> None:
        if not self.workdays or any(d not in range(7) for d in self.workdays):
            raise ValueError("workdays are numbers 0 (Monday) to 6 (Sunday), at least one")
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opening hours are local wall-clock times without a zone")
        if self.closes <= self.opens:
            raise ValueError(f"closes {self.closes} must be after opens {self.opens}")

    @classmethod
    def from_settings(cls, settings: CalendarSettings) -> BusinessCalendar:
        """Build a calendar from ``[calendar]`` settings; errors name the offending key."""
        try:
            zone = ZoneInfo(settings.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(
                f"calendar.timezone: unknown time zone {settings.timezone!r}"
            ) from exc

        workdays = frozenset(settings.workdays)
        if not workdays or any(d not in range(7) for d in workdays):
            raise ValueError(
                "calendar.workdays: numbers 0 (Monday) to 6 (Sunday), at least one; "
                f"got {list(settings.workdays)!r}"
            )

        country, subdivision = _check_region(settings.country, settings.subdivision)

        closed = set()
        for text in settings.closed_days:
            try:
                closed.add(date.fromisoformat(str(text).strip()))
            except ValueError as exc:
                raise ValueError(
                    f"calendar.closed_days: {text!r} is not an ISO date (YYYY-MM-DD)"
                ) from exc

        if len(settings.business_hours) != 2:
            raise ValueError(
                'calendar.business_hours: two times expected, e.g. ["08:00", "17:00"]'
            )
        opens, closes = (_parse_time(t) for t in settings.business_hours)
        if closes <= opens:
            raise ValueError(
                f"calendar.business_hours: closes {settings.business_hours[1]!r} must be "
                f"after opens {settings.business_hours[0]!r}"
            )
        return cls(
            timezone=zone,
            workdays=workdays,
            closed=frozenset(closed),
            country=country,
            subdivision=subdivision,
            opens=opens,
            closes=closes,
        )

    def holidays_in(self, year: int) -> Mapping[date, str]:
        """The public holidays of ``year`` (read-only), names in the country's language."""
        return _holiday_table(self.country, self.subdivision, year)

    def is_business_day(self, day: date) -> bool:
        return (
            day.weekday() in self.workdays
            and day not in self.closed
            and day not in _holiday_table(self.country, self.subdivision, day.year)
        )

    def holiday_name(self, day: date) -> str | None:
        """The public holiday's name (in the country's language), None on other days."""
        return _holiday_table(self.country, self.subdivision, day.year).get(day)


def _check_region(country: str, subdivision: str) -> tuple[str, str | None]:
    supported = holidays.list_supported_countries()
    code = (country or "").strip().upper()
    if code not in supported:
        raise ValueError(f"calendar.country: unknown country {country!r} (ISO 3166 code)")
    sub = (subdivision or "").strip()
    if not sub:
        return code, None
    by_lower = {s.lower(): s for s in supported[code]}
    canonical = by_lower.get(sub.lower(), sub)
    try:  # also accepts the aliases the holidays package knows
        holidays.country_holidays(code, subdiv=canonical)
    except NotImplementedError as exc:
        raise ValueError(
            f"calendar.subdivision: {subdivision!r} is not a subdivision of {code} "
            f"(known: {', '.join(supported[code])})"
        ) from exc
    return code, canonical


def _parse_time(text: str) -> time:
    try:
        parsed = time.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise ValueError(
            f"calendar.business_hours: {text!r} is not a time of day (HH:MM)"
        ) from exc
    if parsed.tzinfo is not None:
        raise ValueError(f"calendar.business_hours: {text!r} must not carry a time zone")
    return parsed


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (maildesk keeps times in UTC)")
    return moment.astimezone(UTC)


@lru_cache(maxsize=8192)
def _wall(zone: ZoneInfo, day: date, clock: time) -> datetime:
    """``day`` at local wall-clock ``clock`` as a UTC instant.

    Non-existent times (spring-forward gap) move forward by the gap; ambiguous ones (autumn)
    take the first occurrence.
    """
    naive = datetime.combine(day, clock.replace(tzinfo=None, fold=0))
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _business_days_after(cal: BusinessCalendar, day: date) -> Iterator[date]:
    """Business days strictly after ``day``, ascending, without end."""
    run = 0
    while True:
        day += _ONE_DAY
        if cal.is_business_day(day):
            run = 0
            yield day
        else:
            run += 1
            if run > _MAX_CLOSED_RUN:
                raise ValueError("the calendar has no business days left")


def add_business_days(cal: BusinessCalendar, start: datetime, days: int) -> datetime:
    """The same local wall-clock time ``days`` business days after ``start``.

    Counting starts on the local day after ``start`` (the start day itself never counts);
    ``days == 0`` returns ``start`` in the calendar's zone.
    """
    local = _utc(start, "start").astimezone(cal.timezone)
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError("days must be an int")
    if days < 0:
        raise ValueError("days must be >= 0")
    if days == 0:
        return local
    day = next(islice(_business_days_after(cal, local.date()), days - 1, None))
    # Not through the cache: arbitrary times of day would only evict the opening hours.
    return _wall.__wrapped__(cal.timezone, day, local.time()).astimezone(cal.timezone)


def business_days_between(cal: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Business days ``d`` with ``local(start).date() < d <= local(end).date()``.

    0 if ``end <= start``.
    """
    first, last = _utc(start, "start"), _utc(end, "end")
    if last <= first:
        return 0
    day = first.astimezone(cal.timezone).date()
    stop = last.astimezone(cal.timezone).date()
    count = 0
    while day < stop:
        day += _ONE_DAY
        if cal.is_business_day(day):
            count += 1
    return count


def add_business_hours(cal: BusinessCalendar, start: datetime, hours: float) -> datetime:
    """``start`` moved forward by ``hours`` of opening time (result in the calendar's zone)."""
    current = _utc(start, "start")
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise TypeError("hours must be a number")
    if not math.isfinite(hours) or hours < 0:
        raise ValueError("hours must be a finite number >= 0")
    remaining = timedelta(microseconds=round(hours * _MICROSECONDS_PER_HOUR))
    day = current.astimezone(cal.timezone).date()
    if not cal.is_business_day(day):
        day = next(_business_days_after(cal, day))
    following = _business_days_after(cal, day)
    while True:
        opens = _wall(cal.timezone, day, cal.opens)
        closes = _wall(cal.timezone, day, cal.closes)
        if current < opens:
            current = opens
        if current < closes:
            available = closes - current
            if remaining <= available:
                return (current + remaining).astimezone(cal.timezone)
            remaining -= available
        day = next(following)


def business_hours_between(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Opening hours elapsed from ``start`` to ``end`` (0.0 if ``end <= start``)."""
    first, last = _utc(start, "start"), _utc(end, "end")
    if last <= first:
        return 0.0
    total = timedelta()
    day = first.astimezone(cal.timezone).date()
    stop = last.astimezone(cal.timezone).date()
    while day <= stop:
        if cal.is_business_day(day):
            lo = max(first, _wall(cal.timezone, day, cal.opens))
            hi = min(last, _wall(cal.timezone, day, cal.closes))
            if hi > lo:
                total += hi - lo
        day += _ONE_DAY
    return total / timedelta(hours=1)
