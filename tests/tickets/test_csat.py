"""Customer satisfaction: the scale, the form's fields, the change window and the
report's arithmetic, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from maildesk.tickets.csat import (
    DIMENSIONS,
    MAX_REASON,
    SCALE,
    InvalidRating,
    RatingRow,
    can_change,
    clean_reason,
    needs_reason,
    parse_score,
    summarize,
)

RATED = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
ZERO_COUNTS = dict.fromkeys(SCALE, 0)


def row(score: int, agent: str | None = "anna", group: str | None = "1st-level",
        request_type: str = "question", has_reason: bool = False) -> RatingRow:
    return RatingRow(score, agent, group, request_type, has_reason)


def counts(**steps: int) -> dict[str, int]:
    return {**ZERO_COUNTS, **steps}


# --- scale and reason ---------------------------------------------------------------------------


def test_scale_is_five_steps_worst_first() -> None:
    assert SCALE == ("very_dissatisfied", "dissatisfied", "neutral", "satisfied",
                     "very_satisfied")


@pytest.mark.parametrize(("score", "asked"), [(1, True), (2, True), (3, True),
                                              (4, False), (5, False)])
def test_reason_is_asked_below_satisfied(score: int, asked: bool) -> None:
    assert needs_reason(score) is asked


# --- parse_score --------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "score"), [
    ("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5),
    (" 4", 4), ("5 ", 5), ("\t3\n", 3), ("  1  ", 1),
])
def test_parse_score_accepts_the_scale(value: str, score: int) -> None:
    assert parse_score(value) == score


@pytest.mark.parametrize("value", [
    "0", "6", "10", "-1", "+3", "", "   ", "x", "2.5", "3,0", "1 2", "five", None, "٣x",
])
def test_parse_score_rejects_everything_else(value: str | None) -> None:
    with pytest.raises(InvalidRating):
        parse_score(value)


@pytest.mark.parametrize("value", ["²", "①"])
def test_parse_score_rejects_digit_like_characters_as_invalid_rating(value: str) -> None:
    with pytest.raises(InvalidRating):
        parse_score(value)


# --- clean_reason -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "kept"), [
    (None, ""),
    ("", ""),
    ("   \n\t ", ""),
    ("  too slow  ", "too slow"),
    ("line one\r\nline two", "line one\nline two"),
    ("old mac\rline", "old mac\nline"),
    ("a\r\n\r\nb", "a\n\nb"),
    ("col1\tcol2\nrow2", "col1\tcol2\nrow2"),
    ("bell\x07 and\x00 nul\x1b[31m", "bell and nul[31m"),
    ("\x00\x01 text \x02", "text"),
    ("Grüße, 你好 😀", "Grüße, 你好 😀"),
])
def test_clean_reason(value: str | None, kept: str) -> None:
    assert clean_reason(value) == kept


def test_clean_reason_is_bounded() -> None:
    assert clean_reason("x" * (MAX_REASON + 500)) == "x" * MAX_REASON
    assert clean_reason("y" * MAX_REASON) == "y" * MAX_REASON
    # the bound applies to what is kept, after trimming
    assert clean_reason("   " + "z" * MAX_REASON + "   ") == "z" * MAX_REASON


def test_clean_reason_keeps_inner_line_breaks_and_tabs() -> None:
    assert clean_reason("\n\tfirst\n\n\tsecond\t\n") == "first\n\n\tsecond"


@pytest.mark.parametrize("control", ["\x7f", "\x85", "\x9b"])
def test_clean_reason_drops_del_and_c1_controls(control: str) -> None:
    assert clean_reason(f"too{control} slow") == "too slow"


# --- can_change ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "allowed"), [
    (RATED, True),
    (RATED + timedelta(days=6, hours=23, minutes=59), True),
    (RATED + timedelta(days=7) - timedelta(microseconds=1), True),
    (RATED + timedelta(days=7), False),
    (RATED + timedelta(days=30), False),
])
def test_can_change_for_change_days(now: datetime, allowed: bool) -> None:
    assert can_change(RATED, now, 7) is allowed


def test_can_change_with_fractional_or_zero_days() -> None:
    assert can_change(RATED, RATED + timedelta(hours=11), 0.5)
    assert not can_change(RATED, RATED + timedelta(hours=12), 0.5)
    assert not can_change(RATED, RATED, 0)


# --- summarize ----------------------------------------------------------------------------------


def test_summarize_empty_is_empty() -> None:
    assert summarize([]) == []
    for by in DIMENSIONS:
        assert summarize([], by=by) == []


def test_summarize_overall() -> None:
    rows = [row(1, has_reason=True), row(2, has_reason=True), row(4), row(5), row(5)]
    assert summarize(rows) == [{
        "key": "all",
        "ratings": 5,
        "average": 3.4,
        "csat": 60.0,
        "with_reason": 2,
        "counts": counts(very_dissatisfied=1, dissatisfied=1, satisfied=1, very_satisfied=2),
    }]


def test_summarize_accepts_any_iterable() -> None:
    assert summarize(row(s) for s in (4, 5))[0]["ratings"] == 2


def test_summarize_rounds_average_and_csat() -> None:
    [entry] = summarize([row(1), row(2), row(4)])
    assert entry["average"] == 2.33
    assert entry["csat"] == 33.3
    [entry] = summarize([row(5), row(5), row(3)])
    assert entry["average"] == 4.33
    assert entry["csat"] == 66.7


def test_summarize_neutral_is_not_satisfied() -> None:
    [entry] = summarize([row(3), row(3)])
    assert entry["csat"] == 0.0
    assert entry["average"] == 3.0
    assert entry["counts"] == counts(neutral=2)


def test_summarize_counts_every_step_even_zero() -> None:
    [entry] = summarize([row(5)])
    assert list(entry["counts"]) == list(SCALE)
    assert entry["counts"] == counts(very_satisfied=1)
    assert entry["csat"] == 100.0


def test_summarize_by_agent_groups_none_and_orders_biggest_first() -> None:
    rows = [
        row(5, agent="zoe"), row(4, agent="zoe"), row(1, agent="zoe", has_reason=True),
        row(2, agent=None, has_reason=True), row(4, agent=None),
        row(5, agent="anna"), row(3, agent="anna"),
        row(5, agent="bert"),
    ]
    result = summarize(rows, by="agent")
    # biggest first, then by key: "(none)" sorts before letters
    assert [(e["key"], e["ratings"]) for e in result] == [
        ("zoe", 3), ("(none)", 2), ("anna", 2), ("bert", 1)]
    zoe, unassigned, anna, bert = result
    assert zoe["average"] == 3.33
    assert zoe["csat"] == 66.7
    assert zoe["with_reason"] == 1
    assert zoe["counts"] == counts(very_dissatisfied=1, satisfied=1, very_satisfied=1)
    assert unassigned["average"] == 3.0
    assert unassigned["csat"] == 50.0
    assert unassigned["with_reason"] == 1
    assert anna["with_reason"] == 0
    assert anna["counts"] == counts(neutral=1, very_satisfied=1)
    assert bert["csat"] == 100.0
    assert sum(e["ratings"] for e in result) == len(rows)


def test_summarize_by_group_treats_empty_like_none() -> None:
    rows = [row(5, group=None), row(4, group=""), row(1, group="2nd-level")]
    assert [(e["key"], e["ratings"]) for e in summarize(rows, by="group")] == [
        ("(none)", 2), ("2nd-level", 1)]


def test_summarize_by_type() -> None:
    rows = [row(2, request_type="incident"), row(5, request_type="question"),
            row(4, request_type="incident"), row(1, request_type="")]
    result = summarize(rows, by="type")
    assert [(e["key"], e["ratings"], e["average"]) for e in result] == [
        ("incident", 2, 3.0), ("(none)", 1, 1.0), ("question", 1, 5.0)]


def test_summarize_ties_are_ordered_by_key() -> None:
    rows = [row(5, agent=name) for name in ("carl", "anna", "bert")]
    assert [e["key"] for e in summarize(rows, by="agent")] == ["anna", "bert", "carl"]


def test_summarize_by_none_ignores_the_dimensions() -> None:
    rows = [row(5, agent="a", group="g"), row(1, agent=None, group=None, request_type="x")]
    [entry] = summarize(rows, by=None)
    assert entry["key"] == "all"
    assert entry["ratings"] == 2


@pytest.mark.parametrize("by", ["customer", "Agent", "", "request_type"])
def test_summarize_unknown_grouping_raises(by: str) -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        summarize([row(5)], by=by)
