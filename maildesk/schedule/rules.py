"""The time-based rules (SPEC §3) as pure functions of the clock.

A pending ticket gets reminder 1 after `reminder_business_days` business
days without a customer answer (its clock then restarts), and after
`second_reminder_business_days` more reminder 2 together with the close; a solved ticket is closed
`solved_close_days` calendar days after it was solved. Times come in as an
argument, never from the system clock, so tests and `maildesk sweep --now`
move time instead of sleeping.

The cutoffs turn "is it due?" into an indexed range query: every ticket
whose clock started before the cutoff is due, so a sweep never looks at
tickets that are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from maildesk.config import RulesSettings
from maildesk.schedule.calendar import BusinessCalendar, business_days_between

REMINDER_1 = "reminder_1"
REMINDER_2 = "reminder_2"  # the second reminder closes the ticket
AUTO_CLOSE = "auto_close"


@dataclass(frozen=True)
class Clock:
    """What a rule needs to know of a ticket."""

    number: int
    status: str
    pending_since: datetime | None
    reminders_sent: int
    solved_at: datetime | None


def due(ticket: Clock, now: datetime, calendar: BusinessCalendar,
        rules: RulesSettings) -> str | None:
    """The rule due for this ticket now, if any (at most one per sweep:
    reminder 2 never comes in the same sweep as reminder 1)."""
    if ticket.status == "pending" and ticket.pending_since is not None:
        waited = business_days_between(calendar, ticket.pending_since, now)
        if ticket.reminders_sent == 0 and waited >= rules.reminder_business_days:
            return REMINDER_1
        # pending_since restarted when reminder 1 went out
        if ticket.reminders_sent == 1 and waited >= rules.second_reminder_business_days:
            return REMINDER_2
    if ticket.status == "solved" and ticket.solved_at is not None:
        if now - ticket.solved_at >= timedelta(days=rules.solved_close_days):
            return AUTO_CLOSE
    return None


def pending_cutoff(now: datetime, calendar: BusinessCalendar, business_days: int) -> datetime:
    """The instant before which a pending clock has run `business_days`:
    pending_since < cutoff  <=>  business_days_between(pending_since, now) >= n.

    business_days_between counts the business days d with
    start.date() < d <= now.date() (local dates); so the clock has run n
    days exactly when start's local date is on or before the day D that has
    n business days in (D, today]. The cutoff is the start of the day after D.
    """
    local_today = now.astimezone(calendar.timezone).date()
    day, counted = local_today, 0
    while counted < business_days:
        if calendar.is_business_day(day):
            counted += 1
        day -= timedelta(days=1)
    return _start_of(day + timedelta(days=1), calendar)


def solved_cutoff(now: datetime, rules: RulesSettings) -> datetime:
    """solved_at at or before this instant: the auto-close is due."""
    return now - timedelta(days=rules.solved_close_days)


def _start_of(day: date, calendar: BusinessCalendar) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=calendar.timezone)
