"""Customer satisfaction (seed 001, SPEC §7): the scale, when a reason is
asked, when a rating may still change, and the report's arithmetic.

Pure: plain values in, plain values out; the pages and the CLI do the I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: The five steps of seed 001, worst first; the stored score is the index + 1.
SCALE = ("very_dissatisfied", "dissatisfied", "neutral", "satisfied", "very_satisfied")
#: From this score on, a customer is counted as satisfied (the CSAT share).
SATISFIED_FROM = 4
#: Longest reason kept (a customer pasting a novel is cut, not refused).
MAX_REASON = 4000
#: What `report csat --by` groups by.
DIMENSIONS = ("agent", "group", "type")


class InvalidRating(ValueError):
    """A submitted form that is not a rating (no or an unknown score)."""


def needs_reason(score: int) -> bool:
    """Every answer below "zufrieden" asks why (seed 001)."""
    return score < SATISFIED_FROM


def parse_score(value: str | None) -> int:
    """The score of a submitted form field ("1".."5")."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= len(SCALE):
        raise InvalidRating(f"score must be one of 1..{len(SCALE)}, not {text!r}")
    return int(text)


def clean_reason(value: str | None) -> str:
    """The reason as kept: control characters out, line breaks kept, bounded."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return text.strip()[:MAX_REASON]


def can_change(rated_at: datetime, now: datetime, change_days: float) -> bool:
    """A rating may be changed for `change_days` after it was first given."""
    return now < rated_at + timedelta(days=change_days)


@dataclass(frozen=True)
class RatingRow:
    """One rating as the report sees it."""

    score: int
    agent: str | None
    group: str | None
    request_type: str
    has_reason: bool = False
    #: For the report's periods and its list of reasons (tickets/reports.py).
    ticket: int | None = None
    reason: str = ""
    rated_at: datetime | None = None


def bucket_key(row: RatingRow, by: str | None) -> str:
    """The bucket a rating falls in: "all", or its agent, group or type."""
    if by is None:
        return "all"
    value = {"agent": row.agent, "group": row.group, "type": row.request_type}[by]
    return value or "(none)"


def summarize(rows: Iterable[RatingRow], by: str | None = None) -> list[dict[str, Any]]:
    """Counts and scores per bucket, biggest bucket first.

    `average` is the mean score (1-5); `csat` is the share of satisfied
    answers (4 and 5) in percent, the usual CSAT figure; `counts` has every
    step of the scale, zeros included, so columns line up.
    """
    if by is not None and by not in DIMENSIONS:
        raise ValueError(f"unknown grouping {by!r} (known: {', '.join(DIMENSIONS)})")
    buckets: dict[str, list[RatingRow]] = {}
    for row in rows:
        buckets.setdefault(bucket_key(row, by), []).append(row)
    result = []
    for key, members in buckets.items():
        scores = [m.score for m in members]
        satisfied = sum(1 for s in scores if s >= SATISFIED_FROM)
        result.append({
            "key": key,
            "ratings": len(scores),
            "average": round(sum(scores) / len(scores), 2),
            "csat": round(100 * satisfied / len(scores), 1),
            "with_reason": sum(1 for m in members if m.has_reason),
            "counts": {name: scores.count(i + 1) for i, name in enumerate(SCALE)},
        })
    result.sort(key=lambda entry: (-entry["ratings"], entry["key"]))
    return result
