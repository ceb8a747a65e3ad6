"""The SLA traffic light (seed 003): green, yellow or red per ticket, from
business hours against the thresholds of its request type.

Two measures: the first answer of an agent, and the solution. Each is green
below `yellow_at` of its limit, yellow below the limit, red past it; a
measure that is met stops its clock. The ticket shows the worse of the two.
The clock does not pause while a ticket waits for the customer: what the
customer sees is the time since they wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.config import SlaSettings
from maildesk.schedule.calendar import BusinessCalendar, business_hours_between

ORDER = {"green": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class Measure:
    state: str
    elapsed_hours: float
    limit_hours: float
    done: bool

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "elapsed_hours": round(self.elapsed_hours, 2),
                "limit_hours": self.limit_hours, "done": self.done}


@dataclass(frozen=True)
class Light:
    state: str
    first_response: Measure
    resolution: Measure

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "first_response": self.first_response.as_dict(),
                "resolution": self.resolution.as_dict()}


def _measure(calendar: BusinessCalendar, start: datetime, end: datetime | None,
             now: datetime, limit: float, yellow_at: float) -> Measure:
    elapsed = business_hours_between(calendar, start, end or now)
    if elapsed >= limit:
        state = "red"
    elif elapsed >= limit * yellow_at:
        state = "yellow"
    else:
        state = "green"
    return Measure(state, elapsed, limit, end is not None)


def light(request_type: str, created_at: datetime, first_response_at: datetime | None,
          resolved_at: datetime | None, now: datetime, settings: SlaSettings,
          calendar: BusinessCalendar) -> Light:
    threshold = getattr(settings, request_type, settings.user_help)
    first = _measure(calendar, created_at, first_response_at, now,
                     threshold.first_response_hours, settings.yellow_at)
    solution = _measure(calendar, created_at, resolved_at, now, threshold.resolution_hours,
                        settings.yellow_at)
    worst = max((first.state, solution.state), key=ORDER.__getitem__)
    return Light(worst, first, solution)
