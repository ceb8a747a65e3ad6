"""A ticket's category as an agent names it: "Main" or "Main/Sub" (SPEC §3,
§9: main and sub category), or "none" to clear both. Pure.

The main and the sub category are two columns of a ticket; naming a
category always sets both, so a sub category never stays behind under a
main category it does not belong to. With a list of allowed categories
(each "Main" or "Main/Sub"), a value outside it is refused with the list; a
listed "Main/Sub" allows its "Main" alone, and the list's spelling is kept
("betrieb" becomes "Betrieb"). Without a list, any well-formed value is
taken as given.

`effect` decides what a new category does to the ticket's group and who is
told (seed 003: "Automatische Gruppenzuweisung mittels Kategorien").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from maildesk.types import Route

SEPARATOR = "/"
#: The word that clears the category (as "none" clears assignee and group).
NONE = "none"
#: The longest main or sub category, in characters.
MAX_PART = 100


class CategoryRefused(ValueError):
    """The value names no category that may be set; the message says why."""


def label(main: str | None, sub: str | None) -> str | None:
    """The category as it is written: "Main", "Main/Sub", or None."""
    if not main:
        return None
    return f"{main}{SEPARATOR}{sub}" if sub else main


def parse(value: str, allowed: Iterable[str] = ()) -> tuple[str | None, str | None]:
    """(main, sub) for `value`; (None, None) for "none" or an empty value.

    Raises CategoryRefused for a control character, more than one "/", an
    empty main category, a part over MAX_PART characters, or (with
    `allowed`) a category not in the list."""
    text = value.strip()
    if not text or text.lower() == NONE:
        return None, None
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise CategoryRefused("category: no control characters")
    parts = [part.strip() for part in text.split(SEPARATOR)]
    if len(parts) > 2:
        raise CategoryRefused(f"category: {value!r} has more than one {SEPARATOR!r} "
                              f"(write Main or Main{SEPARATOR}Sub)")
    main, sub = parts[0], (parts[1] if len(parts) == 2 else "")
    if not main:
        raise CategoryRefused(f"category: {value!r} has no main category "
                              f"(write Main or Main{SEPARATOR}Sub)")
    if len(main) > MAX_PART or len(sub) > MAX_PART:
        raise CategoryRefused(f"category: a main or sub category is at most {MAX_PART} "
                              "characters")
    listed = [entry.strip() for entry in allowed if entry.strip()]
    if not listed:
        return main, sub or None
    known: dict[str, tuple[str, str | None]] = {}
    for entry in listed:
        entry_main, _, entry_sub = (p.strip() for p in entry.partition(SEPARATOR))
        known.setdefault(entry_main.lower(), (entry_main, None))
        if entry_sub:
            known[f"{entry_main}{SEPARATOR}{entry_sub}".lower()] = (entry_main, entry_sub)
    found = known.get((f"{main}{SEPARATOR}{sub}" if sub else main).lower())
    if found is None:
        raise CategoryRefused(f"category: {label(main, sub)!r} is not a configured category "
                              f"(allowed: {', '.join(listed)}, or {NONE})")
    return found


class Rule(Protocol):
    """A main category's rule: config.CategorySettings or a CategoryRule."""

    @property
    def name(self) -> str: ...
    @property
    def group(self) -> str | None: ...
    @property
    def notify(self) -> str | None: ...


@dataclass(frozen=True)
class CategoryRule:
    """What the config says of one main category (config.CategorySettings)."""

    name: str
    group: str | None = None
    notify: str | None = None


@dataclass(frozen=True)
class CategoryEffect:
    """What giving a ticket a category does (seed 003): the group it gets
    (None: the group stays as it is), whether that group's members are told,
    and the address told instead when no group is assigned."""

    group: str | None = None
    tell_group: bool = False
    tell_address: str | None = None

    @property
    def anything(self) -> bool:
        return bool(self.group or self.tell_group or self.tell_address)


NOTHING = CategoryEffect()


def effect(rules: Iterable[Rule], old_main: str | None, new_main: str | None,
           explicit_group: str | None, assign_group: bool) -> CategoryEffect:
    """The effect of changing the main category from `old_main` to `new_main`.

    Only a new main category counts: the group belongs to the main category,
    so a change of the sub category alone (or clearing) does nothing. With
    `assign_group` and a group on the category, the ticket gets that group
    and its members are told, unless the agent names a group in the same
    change (`explicit_group`, "none" included): the agent's choice wins and
    nobody is told by the category. Otherwise the category's notify address
    is told. A category without a rule (free text) does nothing."""
    if not new_main or (old_main or "").lower() == new_main.lower():
        return NOTHING
    rule = next((r for r in rules if r.name.lower() == new_main.lower()), None)
    if rule is None:
        return NOTHING
    if assign_group and rule.group:
        if explicit_group is not None:
            return NOTHING
        return CategoryEffect(group=rule.group, tell_group=True)
    return CategoryEffect(tell_address=rule.notify) if rule.notify else NOTHING


def with_group(route: Route, rules: Iterable[Rule], assign_group: bool) -> tuple[Route, bool]:
    """A new ticket's route with its main category's group when the route
    names none; True when the category chose the group (the history says
    so). The members are told by the new-ticket notice itself, so nobody
    gets a second mail for the same ticket."""
    found = effect(rules, None, route.category, route.group, assign_group)
    if not found.group:
        return route, False
    return replace(route, group=found.group), True
