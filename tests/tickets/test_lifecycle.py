"""The status lifecycle: every (status, event) pair against a table written out here.

The expected tables are spelled out independently of maildesk.tickets.lifecycle (seed
000/001, SPEC §3), so a change to the module's table fails here until the
change is made on purpose in both places.
"""

from __future__ import annotations

import itertools

import pytest

from maildesk.tickets.lifecycle import (
    EVENTS,
    STATUSES,
    IllegalTransition,
    Transition,
    next_status,
)

ILLEGAL = "illegal"

# (status, event) -> (status after, effect) or ILLEGAL; agent_set_status is below.
EXPECTED: dict[tuple[str, str], tuple[str, str | None] | str] = {
    ("new", "customer_reply"): ("new", None),
    ("new", "agent_reply"): ("open", None),
    ("new", "customer_marks_solved"): ("solved", None),
    ("new", "reminder_due"): ILLEGAL,
    ("new", "auto_close"): ILLEGAL,
    ("open", "customer_reply"): ("open", None),
    ("open", "agent_reply"): ("open", None),
    ("open", "customer_marks_solved"): ("solved", None),
    ("open", "reminder_due"): ILLEGAL,
    ("open", "auto_close"): ILLEGAL,
    ("pending", "customer_reply"): ("open", None),
    ("pending", "agent_reply"): ("pending", None),
    ("pending", "customer_marks_solved"): ("solved", None),
    ("pending", "reminder_due"): ("pending", None),
    ("pending", "auto_close"): ("closed", None),
    ("on_hold", "customer_reply"): ("on_hold", None),
    ("on_hold", "agent_reply"): ("on_hold", None),
    ("on_hold", "customer_marks_solved"): ("solved", None),
    ("on_hold", "reminder_due"): ILLEGAL,
    ("on_hold", "auto_close"): ILLEGAL,
    ("solved", "customer_reply"): ("open", "reopened"),
    ("solved", "agent_reply"): ("solved", None),
    ("solved", "customer_marks_solved"): ("solved", None),
    ("solved", "reminder_due"): ILLEGAL,
    ("solved", "auto_close"): ("closed", None),
    ("closed", "customer_reply"): ("closed", "followup"),
    ("closed", "agent_reply"): ILLEGAL,
    ("closed", "customer_marks_solved"): ILLEGAL,
    ("closed", "reminder_due"): ILLEGAL,
    ("closed", "auto_close"): ILLEGAL,
}

# agent_set_status: status after, per current status (rows) and target (columns).
# "new" is never a target, "deleted" is no status at all, closed is final.
X = ILLEGAL
TARGETS = ("new", "open", "pending", "on_hold", "solved", "closed", "deleted")
EXPECTED_SET_ROWS: dict[str, tuple[str, ...]] = {
    "new":     (X, "open", "pending", "on_hold", "solved", "closed", X),
    "open":    (X, "open", "pending", "on_hold", "solved", "closed", X),
    "pending": (X, "open", "pending", "on_hold", "solved", "closed", X),
    "on_hold": (X, "open", "pending", "on_hold", "solved", "closed", X),
    "solved":  (X, "open", "pending", "on_hold", "solved", "closed", X),
    "closed":  (X, X,      X,         X,         X,        X,        X),
}  # fmt: skip
EXPECTED_SET: dict[tuple[str, str], str] = {
    (status, target): after
    for status, row in EXPECTED_SET_ROWS.items()
    for target, after in zip(TARGETS, row, strict=True)
}


def test_statuses_and_events_are_the_documented_ones() -> None:
    assert STATUSES == ("new", "open", "pending", "on_hold", "solved", "closed")
    assert set(EVENTS) == {
        "customer_reply", "agent_reply", "agent_set_status",
        "customer_marks_solved", "reminder_due", "auto_close",
    }  # fmt: skip


def test_the_expected_tables_cover_every_pair() -> None:
    plain_events = [e for e in EVENTS if e != "agent_set_status"]
    assert set(EXPECTED) == set(itertools.product(STATUSES, plain_events))
    assert {s for s, _ in EXPECTED_SET} == set(STATUSES)


@pytest.mark.parametrize(
    ("status", "event"), sorted(EXPECTED), ids=[f"{s}-{e}" for s, e in sorted(EXPECTED)]
)
def test_every_status_event_pair(status: str, event: str) -> None:
    expected = EXPECTED[(status, event)]
    if expected == ILLEGAL:
        with pytest.raises(IllegalTransition) as info:
            next_status(status, event)
        message = str(info.value)
        assert f"ticket is {status}" in message
        assert event in message
        assert info.value.current == status and info.value.event == event
    else:
        after, effect = expected
        transition = next_status(status, event)
        assert (transition.status, transition.effect) == (after, effect)
        assert transition.changed is (after != status)
        assert transition.previous == status


@pytest.mark.parametrize(
    ("status", "target"), sorted(EXPECTED_SET), ids=[f"{s}-to-{t}" for s, t in sorted(EXPECTED_SET)]
)
def test_agent_set_status_for_every_status_and_target(status: str, target: str) -> None:
    expected = EXPECTED_SET[(status, target)]
    if expected == ILLEGAL:
        with pytest.raises(IllegalTransition) as info:
            next_status(status, "agent_set_status", target)
        message = str(info.value)
        assert f"ticket is {status}" in message
        assert "agent_set_status" in message and repr(target) in message
        assert info.value.target == target
    else:
        transition = next_status(status, "agent_set_status", target)
        assert transition == Transition(expected)
        assert transition.effect is None
        assert transition.changed is (expected != status)


def test_closed_is_final_and_says_where_a_reply_goes() -> None:
    with pytest.raises(IllegalTransition, match=r"closed.*agent_reply.*follow-up"):
        next_status("closed", "agent_reply")


def test_setting_status_needs_a_target() -> None:
    with pytest.raises(IllegalTransition, match="ticket is open: agent_set_status needs"):
        next_status("open", "agent_set_status")


@pytest.mark.parametrize("event", [e for e in EVENTS if e != "agent_set_status"])
def test_a_target_belongs_to_agent_set_status_only(event: str) -> None:
    with pytest.raises(IllegalTransition, match=f"ticket is pending: {event} takes no target"):
        next_status("pending", event, "open")


def test_unknown_status_is_refused_by_name() -> None:
    with pytest.raises(IllegalTransition, match=r"^unknown ticket status 'archived'"):
        next_status("archived", "customer_reply")


def test_unknown_event_is_refused_by_name() -> None:
    with pytest.raises(IllegalTransition, match="ticket is open: unknown event 'escalate'"):
        next_status("open", "escalate")


def test_illegal_transition_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="ticket is new"):
        next_status("new", "reminder_due")


def test_previous_status_does_not_take_part_in_equality() -> None:
    assert next_status("pending", "customer_reply") == Transition("open")
    assert Transition("open").changed is False  # nothing to compare with
    assert Transition("open", previous="pending").changed is True
