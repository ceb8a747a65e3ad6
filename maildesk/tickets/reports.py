"""The reports' arithmetic (SPEC §7, §9; issue #14): tickets counted by
channel, category, request type or status and by period; satisfaction
ratings by agent, group or request type and period, with the reasons the
customers gave; first-response and resolution times against the SLA.

Pure: plain rows in (store/reports.py reads them), plain dicts out, the
same for the CLI's --json and the HTTP API. Periods are UTC days, ISO weeks
(Monday to Sunday, "2026-W10") and months; a period without a ticket or a
rating has no line. `from` and `until` are whole UTC days, both included.

SLA times are measured by the caller's `light` (schedule/sla.py's, handed
in, as the layers want): business hours from the ticket's creation to the
first public answer and to its solution. A measure is *met* when it was
done before its target, *breached* when the target passed (answered late,
or still unanswered past it: sla.py's red) and *open* while it runs within
its target; `count`, `median_hours` and `p90_hours` are over the done ones.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from maildesk.config import REQUEST_TYPES, SlaSettings
from maildesk.tickets import csat

PERIODS = ("day", "week", "month")
#: What the ticket and SLA reports group by (the row attribute of each).
DIMENSIONS = ("channel", "category", "request_type", "status", "agent", "group")
#: What the CSAT report groups by (csat.DIMENSIONS: agent, group, type).
CSAT_DIMENSIONS = csat.DIMENSIONS
#: The longest range a daily report covers (three years, in days).
MAX_DAYS = 3 * 366
#: The key of a row without a value in the dimension (no category, no agent).
NONE_KEY = "(none)"
#: The key of the single bucket when a report is not grouped.
ALL_KEY = "all"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
#: Resolved means solved or closed (as views.py's SLA light counts it).
RESOLVED = ("solved", "closed")


class InvalidReport(ValueError):
    """A report asked for in a way that cannot be answered; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_day(text: str, field: str) -> date:
    """A day written YYYY-MM-DD (nothing else: no week dates, no times)."""
    if not _DAY.match(text):
        raise InvalidReport(field, f"{text!r} is not a day (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidReport(field, f"{text!r} is not a day of the calendar (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Span:
    """The days a report covers, both included; None: unbounded."""

    start: date | None = None
    end: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """From the start of the first day (UTC) to the start of the day
        after the last one, excluded; what the queries filter on."""
        low = datetime.combine(self.start, time(), UTC) if self.start else None
        high = (datetime.combine(self.end + timedelta(days=1), time(), UTC)
                if self.end and self.end < date.max else None)
        return low, high

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return self.start is None and self.end is None
        low, high = self.bounds()
        moment = _utc(moment)
        return (low is None or moment >= low) and (high is None or moment < high)

    def as_dict(self) -> dict[str, str | None]:
        return {"from": self.start.isoformat() if self.start else None,
                "until": self.end.isoformat() if self.end else None}


def span(start: date | None, end: date | None, period: str | None, today: date) -> Span:
    """The range asked for, checked: `from` not after `until`, and a daily
    report over at most MAX_DAYS days (until today when `until` is open)."""
    if period is not None and period not in PERIODS:
        raise InvalidReport("period", f"one of {', '.join(PERIODS)}, not {period!r}")
    if start and end and start > end:
        raise InvalidReport("from", f"{start} is after until ({end})")
    if period == "day" and start is not None:
        last = end or max(today, start)
        if (last - start).days + 1 > MAX_DAYS:
            raise InvalidReport("from", (
                f"period=day covers at most {MAX_DAYS} days; {start} to {last} is "
                f"{(last - start).days + 1} (ask for period=week or month)"))
    return Span(start, end)


@dataclass(frozen=True)
class Period:
    label: str | None  # "2026-03-02", "2026-W10", "2026-03"; None: not by period
    start: date | None  # its first day


def period_of(moment: datetime | None, period: str | None) -> Period:
    """The period (UTC) a moment falls in."""
    if period is None or moment is None:
        return Period(None, None)
    day = _utc(moment).date()
    if period == "day":
        return Period(day.isoformat(), day)
    if period == "week":
        year, week, weekday = day.isocalendar()
        return Period(f"{year}-W{week:02d}", day - timedelta(days=weekday - 1))
    if period == "month":
        return Period(f"{day.year:04d}-{day.month:02d}", day.replace(day=1))
    raise ValueError(f"unknown period {period!r} (known: {', '.join(PERIODS)})")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class TicketRow:
    """One ticket as the reports see it (store/reports.py ticket_rows)."""

    number: int
    created_at: datetime
    channel: str
    category: str | None
    request_type: str
    status: str
    agent: str | None = None  # the assignee's address
    group: str | None = None
    first_response_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def resolved_at(self) -> datetime | None:
        """When it was resolved, if it still is (a reopened ticket is not)."""
        return (self.solved_at or self.closed_at) if self.status in RESOLVED else None


def _key(row: TicketRow, by: str | None) -> str:
    if by is None:
        return ALL_KEY
    return getattr(row, by) or NONE_KEY


def _check_by(by: str | None, known: Sequence[str]) -> None:
    if by is not None and by not in known:
        raise ValueError(f"unknown grouping {by!r} (known: {', '.join(known)})")


def _head(by: str | None, period: str | None, within: Span, total: int) -> dict[str, Any]:
    return {"by": by, "period": period, **within.as_dict(), "total": total}


def _order(entry: dict[str, Any], size: str) -> tuple[date, int, str]:
    start = date.fromisoformat(entry["start"]) if entry["start"] else date.min
    return start, -entry[size], entry["key"]


def _period_buckets(rows: Iterable[Any], moment: Callable[[Any], datetime | None],
                    period: str | None) -> dict[Period, list[Any]]:
    buckets: dict[Period, list[Any]] = {}
    for row in rows:
        buckets.setdefault(period_of(moment(row), period), []).append(row)
    return buckets


def _period_fields(where: Period) -> dict[str, str | None]:
    return {"period": where.label, "start": where.start.isoformat() if where.start else None}


def tickets_report(rows: Iterable[TicketRow], by: str | None, period: str | None,
                   within: Span = Span()) -> dict[str, Any]:
    """Tickets created in the span, counted per period and key; biggest
    first within a period, periods oldest first."""
    _check_by(by, DIMENSIONS)
    taken = [r for r in rows if within.contains(r.created_at)]
    groups = []
    for where, members in _period_buckets(taken, lambda r: r.created_at, period).items():
        counts: dict[str, int] = {}
        for row in members:
            counts[_key(row, by)] = counts.get(_key(row, by), 0) + 1
        groups += [{**_period_fields(where), "key": key, "tickets": n}
                   for key, n in counts.items()]
    groups.sort(key=lambda e: _order(e, "tickets"))
    return {**_head(by, period, within, len(taken)), "groups": groups}


def csat_report(rows: Iterable[csat.RatingRow], by: str | None, period: str | None,
                within: Span = Span()) -> dict[str, Any]:
    """csat.summarize per period (by the rating's first answer), each bucket
    with the reasons its customers gave, newest first."""
    _check_by(by, CSAT_DIMENSIONS)
    taken = [r for r in rows if within.contains(r.rated_at)]
    groups = []
    for where, members in _period_buckets(taken, lambda r: r.rated_at, period).items():
        for entry in csat.summarize(members, by):
            given = sorted((m for m in members if m.reason and
                            csat.bucket_key(m, by) == entry["key"]),
                           key=lambda m: (m.rated_at or datetime.min.replace(tzinfo=UTC),
                                          m.ticket or 0), reverse=True)
            groups.append({**_period_fields(where), **entry, "reasons": [
                {"ticket": m.ticket, "score": m.score, "rating": csat.SCALE[m.score - 1],
                 "reason": m.reason, "rated_at": m.rated_at.isoformat() if m.rated_at else None}
                for m in given]})
    groups.sort(key=lambda e: _order(e, "ratings"))
    return {**_head(by, period, within, len(taken)), "groups": groups}


# -- SLA -------------------------------------------------------------------------------------


class Measured(Protocol):
    """One measure of schedule/sla.py (its Measure)."""

    @property
    def state(self) -> str: ...
    @property
    def elapsed_hours(self) -> float: ...
    @property
    def done(self) -> bool: ...


class Lit(Protocol):
    """schedule/sla.py's Light: both measures of one ticket."""

    @property
    def first_response(self) -> Measured: ...
    @property
    def resolution(self) -> Measured: ...


#: sla.light with the settings and calendar bound: (request_type,
#: created_at, first_response_at, resolved_at, now) -> its Light.
LightFn = Callable[[str, datetime, datetime | None, datetime | None, datetime], Lit]


def nearest_rank(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted `values` (share 0 < s <= 1):
    the smallest value with at least that share of values at or below it."""
    if not values:
        raise ValueError("no values")
    return values[max(0, math.ceil(share * len(values)) - 1)]


def times(measures: Sequence[Measured]) -> dict[str, Any]:
    """Count, median and 90th percentile (business hours) of the done
    measures, and how many met, breached or still run within their target."""
    done = sorted(m.elapsed_hours for m in measures if m.done)
    breached = sum(1 for m in measures if m.state == "red")
    met = sum(1 for m in measures if m.done and m.state != "red")
    decided = met + breached
    return {
        "count": len(done),
        "median_hours": round(statistics.median(done), 2) if done else None,
        "p90_hours": round(nearest_rank(done, 0.9), 2) if done else None,
        "met": met,
        "breached": breached,
        "open": len(measures) - decided,
        "met_pct": round(100 * met / decided, 1) if decided else None,
    }


def targets(settings: SlaSettings) -> dict[str, dict[str, float]]:
    """The SLA targets per request type, in business hours."""
    return {kind: {"first_response_hours": getattr(settings, kind).first_response_hours,
                   "resolution_hours": getattr(settings, kind).resolution_hours}
            for kind in REQUEST_TYPES}


def sla_report(rows: Iterable[TicketRow], by: str | None, period: str | None,
               within: Span, now: datetime, light: LightFn,
               settings: SlaSettings) -> dict[str, Any]:
    """First-response and resolution times of the tickets created in the
    span, per period (of creation) and key, against their SLA targets."""
    _check_by(by, DIMENSIONS)
    taken = [r for r in rows if within.contains(r.created_at)]
    groups = []
    for where, members in _period_buckets(taken, lambda r: r.created_at, period).items():
        keyed: dict[str, list[Lit]] = {}
        for row in members:
            keyed.setdefault(_key(row, by), []).append(light(
                row.request_type, row.created_at, row.first_response_at, row.resolved_at, now))
        groups += [{**_period_fields(where), "key": key, "tickets": len(lights),
                    "first_response": times([x.first_response for x in lights]),
                    "resolution": times([x.resolution for x in lights])}
                   for key, lights in keyed.items()]
    groups.sort(key=lambda e: _order(e, "tickets"))
    return {**_head(by, period, within, len(taken)), "targets": targets(settings),
            "groups": groups}
