"""The "New request" form's checks, without a server (web/portal/request_form.py)."""

from __future__ import annotations

from maildesk.config import CategorySettings
from maildesk.web.portal import request_form as rules

CATEGORIES = (CategorySettings(name="Betrieb", subcategories=("Drucker",), public=True,
                               asks_version=True),
              CategorySettings(name="Intern", public=False))
GOOD = {"subject": ["Drucker"], "description": ["Fehler 42"], "request_type": ["incident"]}


def test_a_complete_form_is_taken_with_the_types_priority() -> None:
    clean, errors = rules.check(GOOD | {"category": ["Betrieb/Drucker"], "version": ["5.2"],
                                        "cc": ["7"]}, CATEGORIES, {7})
    assert errors == [] and clean is not None
    assert (clean.priority, clean.category, clean.version, clean.cc) == (
        "normal", "Betrieb/Drucker", "5.2", (7,))


def test_missing_unknown_and_forged_fields_are_each_named_in_form_order() -> None:
    clean, errors = rules.check({"request_type": ["sofort"], "category": ["Intern"],
                                 "cc": ["8"]}, CATEGORIES, {7})
    assert clean is None
    assert [(e.field, e.reason) for e in errors] == [
        ("subject", "missing"), ("description", "missing"), ("request_type", "unknown"),
        ("category", "unknown"), ("cc", "not_offered")]


def test_a_category_that_asks_the_version_requires_it() -> None:
    _, errors = rules.check(GOOD | {"category": ["Betrieb"]}, CATEGORIES, set())
    assert [(e.field, e.reason) for e in errors] == [("version", "missing")]


def test_only_public_categories_are_offered_with_their_subcategories() -> None:
    assert [c.label for c in rules.category_choices(CATEGORIES)] == ["Betrieb",
                                                                     "Betrieb / Drucker"]
    assert [(t.value, t.priority) for t in rules.type_choices()] == [
        ("user_help", "low"), ("incident", "normal"), ("product_request", "normal"),
        ("urgent", "high")]
