"""The reports' query parameters and answers (web/api/reports.py), as
pydantic models: what the handlers validate with and the OpenAPI document
is written from. The keys are those of `maildesk report … --json`
(tickets/reports.py writes both)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from maildesk.tickets import reports

By = Literal["channel", "category", "request_type", "status", "agent", "group"]
CsatBy = Literal["agent", "group", "type"]
Period = Literal["day", "week", "month"]
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _day(value: str) -> str:
    try:
        reports.parse_day(value, "day")
    except reports.InvalidReport as exc:  # pydantic names the parameter
        raise ValueError(exc.message) from None
    return value


#: A day, YYYY-MM-DD (UTC).
Day = Annotated[str, AfterValidator(_day),
                Field(json_schema_extra={"format": "date", "pattern": DAY_PATTERN})]
DayText = Annotated[str, Field(json_schema_extra={"format": "date"})]

assert set(By.__args__) == set(reports.DIMENSIONS)  # type: ignore[attr-defined]
assert set(CsatBy.__args__) == set(reports.CSAT_DIMENSIONS)  # type: ignore[attr-defined]
assert set(Period.__args__) == set(reports.PERIODS)  # type: ignore[attr-defined]


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: Period | None = Field(default=None, description="day, ISO week or month (UTC)")
    from_: Day | None = Field(default=None, alias="from",
                              description="first day, included (YYYY-MM-DD, UTC)")
    until: Day | None = Field(default=None, description="last day, included (YYYY-MM-DD, UTC)")


class TicketReportQuery(_Range):
    """GET /reports/tickets and /reports/sla parameters."""

    by: By | None = None


class CsatReportQuery(_Range):
    """GET /reports/csat parameters."""

    by: CsatBy | None = None


class _Head(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)
    by: str | None
    period: str | None
    from_: DayText | None = Field(alias="from")
    until: DayText | None
    #: Tickets (ratings) in the range, over every group.
    total: int


class _Bucket(BaseModel):
    #: "2026-03-02", "2026-W10" or "2026-03"; null when not by period.
    period: str | None
    #: The first day of the period.
    start: DayText | None
    #: The value grouped by ("(none)" for none), or "all".
    key: str


class TicketGroup(_Bucket):
    tickets: int


class TicketReport(_Head):
    groups: list[TicketGroup]


class CsatReason(BaseModel):
    ticket: int | None
    score: int
    rating: str
    reason: str
    rated_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})] | None


class CsatGroup(_Bucket):
    ratings: int
    #: Mean score, 1-5.
    average: float
    #: Share of satisfied answers (4 and 5), in percent.
    csat: float
    with_reason: int
    #: Every step of the scale, zeros included.
    counts: dict[str, int]
    #: The reasons given, newest first.
    reasons: list[CsatReason]


class CsatReport(_Head):
    groups: list[CsatGroup]


class Times(BaseModel):
    """One SLA measure of a group's tickets, in business hours."""

    #: Tickets where it is done (answered; resolved).
    count: int
    median_hours: float | None
    p90_hours: float | None
    #: Done within the target.
    met: int
    #: The target passed: done late, or not done and past it.
    breached: int
    #: Not done yet and still within the target.
    open: int
    #: met / (met + breached), in percent.
    met_pct: float | None


class SlaTarget(BaseModel):
    first_response_hours: float
    resolution_hours: float


class SlaGroup(_Bucket):
    tickets: int
    first_response: Times
    resolution: Times


class SlaReport(_Head):
    #: Per request type, in business hours.
    targets: dict[str, SlaTarget]
    groups: list[SlaGroup]
