"""The customer-facing names of status, request type and priority, by language.

Shared by the notification templates (deliver/render.py), the customers'
pages (web/page_render.py) and the release notice: one table, so a status is
called the same in a mail and on a page. Pure.
"""

from __future__ import annotations

import re

#: The language whose labels and templates every other one falls back to.
FALLBACK_LANGUAGE = "de"

_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")

_LABELS: dict[str, dict[str, dict[str, str]]] = {
    # Customer-facing names from the seed documents 000/001 (SPEC §3).
    "de": {
        "status": {
            "new": "Neu",
            "open": "Offen",
            "pending": "Wartet auf Ihre Antwort",
            "on_hold": "Offen (in Entwicklung)",
            "solved": "Gelöst",
            "closed": "Geschlossen",
        },
        "request_type": {
            "user_help": "Anwenderhilfe",
            "incident": "Fehler/Störung",
            "product_request": "Produktanforderung",
            "urgent": "Dringlichkeit",
        },
        "priority": {"low": "niedrig", "normal": "normal", "high": "hoch"},
    },
    "en": {
        "status": {
            "new": "New",
            "open": "Open",
            "pending": "Waiting for your reply",
            "on_hold": "Open (in development)",
            "solved": "Solved",
            "closed": "Closed",
        },
        "request_type": {
            "user_help": "User help",
            "incident": "Incident",
            "product_request": "Product request",
            "urgent": "Urgent",
        },
        "priority": {"low": "Low", "normal": "Normal", "high": "High"},
    },
}


def labels(language: str) -> dict[str, dict[str, str]]:
    """Status, request type and priority labels for ``language``.

    ``{"status": {...}, "request_type": {...}, "priority": {...}}``, keyed by
    the stored values ("pending", "user_help", "low"). "de-AT" gets German;
    a language without built-in labels gets German (the fallback language).
    A copy: callers may change it.
    """
    found = labels_for(language)
    return {group: dict(values) for group, values in found.items()}


def labels_for(language: str) -> dict[str, dict[str, str]]:
    """The shared table itself (read-only: callers must not change it)."""
    for candidate in language_variants(language):
        if candidate in _LABELS:
            return _LABELS[candidate]
    return _LABELS[FALLBACK_LANGUAGE]


def language_variants(language: str) -> list[str]:
    """Lookup forms of a language tag: de_AT -> [de-at, de]; junk -> []."""
    tag = str(language or "").strip().lower().replace("_", "-")
    if not _LANGUAGE.match(tag):
        return []
    primary = tag.split("-", 1)[0]
    return [tag] if tag == primary else [tag, primary]
