"""A ticket's category as an agent names it: "Main" or "Main/Sub" (SPEC §3,
§9: main and sub category), or "none" to clear both. Pure.

The main and the sub category are two columns of a ticket; naming a
category always sets both, so a sub category never stays behind under a
main category it does not belong to. With a list of allowed categories
(each "Main" or "Main/Sub"), a value outside it is refused with the list; a
listed "Main/Sub" allows its "Main" alone, and the list's spelling is kept
("betrieb" becomes "Betrieb"). Without a list, any well-formed value is
taken as given.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

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
