"""The portal's "New request" form as data (issue 16): what it offers and
whether what came back can be taken. Pure: no request, no database.

Offered are the request types of SPEC §3 each with the priority it brings
(config.REQUEST_TYPES / PRIORITY_FOR_TYPE: the seeds' table), and the
configured categories marked `public` as "Main" and "Main/Sub" choices (a
category not public is no choice, whatever a forged form says). A category
with `asks_version` makes the product version required. The colleagues to
CC are the ids the caller offered (actions/colleagues.py); any other id is
refused, so a forged id names nobody.

`check` returns every field error at once, so the page can mark them all.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from maildesk.config import PRIORITY_FOR_TYPE, REQUEST_TYPES, CategorySettings

SUBJECT, DESCRIPTION, REQUEST_TYPE = "subject", "description", "request_type"
CATEGORY, VERSION, CC = "category", "version", "cc"
#: The fields in the order of the form (the error summary follows it).
FIELDS = (SUBJECT, DESCRIPTION, REQUEST_TYPE, CATEGORY, VERSION, CC)
MAX_SUBJECT = 200
#: As a customer's message on a ticket (actions/portal.py).
MAX_DESCRIPTION = 100_000
#: The ticket's version column.
MAX_VERSION = 64
SEPARATOR = "/"


@dataclass(frozen=True)
class CategoryChoice:
    """One option of the category select: `value` "Main" or "Main/Sub"."""

    value: str
    main: str
    sub: str | None
    asks_version: bool

    @property
    def label(self) -> str:
        return f"{self.main} / {self.sub}" if self.sub else self.main


@dataclass(frozen=True)
class TypeChoice:
    value: str
    priority: str


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str  # missing / too_long / invalid / unknown / not_offered


@dataclass(frozen=True)
class CleanRequest:
    subject: str
    description: str
    request_type: str
    priority: str
    category: str | None  # "Main" or "Main/Sub", as open_ticket takes it
    version: str | None
    cc: tuple[int, ...]


def type_choices() -> list[TypeChoice]:
    return [TypeChoice(t, PRIORITY_FOR_TYPE[t]) for t in REQUEST_TYPES]


def category_choices(categories: Sequence[CategorySettings]) -> list[CategoryChoice]:
    """The public categories, each main one followed by its sub categories."""
    choices: list[CategoryChoice] = []
    for category in categories:
        if not category.public:
            continue
        choices.append(CategoryChoice(category.name, category.name, None, category.asks_version))
        choices += [CategoryChoice(f"{category.name}{SEPARATOR}{sub}", category.name, sub,
                                   category.asks_version) for sub in category.subcategories]
    return choices


def _controls(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed for ch in text)


def _text(value: str, limit: int, field: str, errors: list[FieldError],
          allowed: str = "") -> str:
    text = value.strip()
    if not text:
        errors.append(FieldError(field, "missing"))
    elif len(text) > limit:
        errors.append(FieldError(field, "too_long"))
    elif _controls(text, allowed):
        errors.append(FieldError(field, "invalid"))
    return text


def _ids(values: Sequence[str], offered: Collection[int], errors: list[FieldError]
         ) -> tuple[int, ...]:
    chosen: list[int] = []
    for raw in values:
        number = int(raw) if raw.strip().isdigit() and len(raw.strip()) <= 18 else None
        if number is None or number not in offered:
            errors.append(FieldError(CC, "not_offered"))
            return ()
        if number not in chosen:
            chosen.append(number)
    return tuple(chosen)


def check(fields: Mapping[str, Sequence[str]], categories: Sequence[CategorySettings],
          colleague_ids: Collection[int]) -> tuple[CleanRequest | None, list[FieldError]]:
    """The request as it is opened, or None and the errors, field by field
    in the form's order."""
    def first(name: str) -> str:
        return next(iter(fields.get(name, ())), "")

    errors: list[FieldError] = []
    subject = _text(first(SUBJECT), MAX_SUBJECT, SUBJECT, errors)
    description = _text(first(DESCRIPTION), MAX_DESCRIPTION, DESCRIPTION, errors, "\n\r\t")
    request_type = first(REQUEST_TYPE).strip()
    if not request_type:
        errors.append(FieldError(REQUEST_TYPE, "missing"))
    elif request_type not in REQUEST_TYPES:
        errors.append(FieldError(REQUEST_TYPE, "unknown"))
    offered = {c.value: c for c in category_choices(categories)}
    wanted = first(CATEGORY).strip()
    category = offered.get(wanted) if wanted else None
    if wanted and category is None:
        errors.append(FieldError(CATEGORY, "unknown"))
    version: str | None = None  # for a category that asks none, a typed one is not kept
    if category is not None and category.asks_version:
        version = _text(first(VERSION), MAX_VERSION, VERSION, errors)
    cc = _ids(fields.get(CC, ()), colleague_ids, errors)
    errors.sort(key=lambda e: FIELDS.index(e.field))
    if errors:
        return None, errors
    return CleanRequest(subject, description, request_type, PRIORITY_FOR_TYPE[request_type],
                        category.value if category else None, version or None, cc), []
