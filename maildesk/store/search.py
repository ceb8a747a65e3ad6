"""Text search over tickets: the subject, and every message's text and
sender, matched as a substring without regard to case.

A substring search cannot use a b-tree index: on 100,000 tickets a LIKE
over all message text reads and lower-cases every byte (a third of a
second on SQLite; bench/api.py). Both databases have a trigram index for
exactly this: SQLite's FTS5 `trigram` tokenizer (a phrase of three or more
characters matches any substring, case-folded) and PostgreSQL's pg_trgm
(a GIN index that LIKE uses). Migration 0011 creates them; shorter terms,
and databases where pg_trgm could not be installed, fall back to LIKE.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, column, func, or_, select, text
from sqlmodel import Session, col

from maildesk.models import Message, Ticket

#: The FTS5 tables over message.text and .from_addr, and ticket.subject (SQLite).
FTS_TABLE = "message_search"
SUBJECT_TABLE = "ticket_search"
#: The GIN indexes over lower() of the same columns (PostgreSQL, pg_trgm).
TRGM_INDEXES = ("ix_message_text_trgm", "ix_message_from_trgm", "ix_ticket_subject_trgm")
#: A trigram needs three characters; shorter terms are looked for by LIKE.
MIN_INDEXED = 3
#: Longer ASCII terms are looked up by this many letters, then checked whole.
PREFIX = 10


def schema_object(name: str | None) -> bool:
    """Whether a table or index is the search index's, not a model's (the
    migration test and autogenerate leave them alone)."""
    return bool(name) and (name in TRGM_INDEXES
                           or str(name).startswith((FTS_TABLE, SUBJECT_TABLE)))


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matching_tickets(session: Session, term: str,
                     directions: tuple[str, ...] | None = None, *,
                     narrowed: bool = False) -> Any:
    """A WHERE clause over `ticket`: the term in its subject or in one of
    its messages (text or sender), or its number (`#10042` or `10042`).
    `directions`: only messages of these directions count (a customer's
    search must never find a ticket by the words of an internal note).
    `narrowed`: the caller's other conditions leave few tickets (a
    customer's own or organisation's, a few thousand at most): each is
    checked by its own messages (EXISTS over the ticket_id index) instead
    of collecting every matching mail of the whole desk first, which for a
    common word is most of the database (bench/portal.py: 417 ms p50)."""
    pattern = f"%{_escape_like(term.lower())}%"
    if narrowed:
        conditions = [func.lower(Ticket.subject).like(pattern, escape="\\"),
                      _message_exists(pattern, directions)]
    elif (session.get_bind().dialect.name == "sqlite" and len(term) >= MIN_INDEXED
            and _has_fts(session)):
        conditions = _fts_conditions(term, pattern, directions)
    else:  # PostgreSQL's pg_trgm indexes serve lower(...) LIKE as written here
        by_message = select(Message.ticket_id).where(or_(
            func.lower(Message.text).like(pattern, escape="\\"),
            func.lower(Message.from_addr).like(pattern, escape="\\")))
        if directions is not None:
            by_message = by_message.where(col(Message.direction).in_(directions))
        conditions = [func.lower(Ticket.subject).like(pattern, escape="\\"),
                      col(Ticket.id).in_(by_message)]
    if term.lstrip("#").isdigit() and len(term.lstrip("#")) <= 18:
        conditions.append(Ticket.number == int(term.lstrip("#")))
    return or_(*conditions)


def _message_exists(pattern: str, directions: tuple[str, ...] | None) -> Any:
    """One of the ticket's own messages has the pattern (correlated)."""
    found = select(Message.id).where(
        col(Message.ticket_id) == Ticket.id,
        or_(func.lower(Message.text).like(pattern, escape="\\"),
            func.lower(Message.from_addr).like(pattern, escape="\\")))
    if directions is not None:
        found = found.where(col(Message.direction).in_(directions))
    return found.exists()


def _fts_conditions(term: str, pattern: str,
                    directions: tuple[str, ...] | None = None) -> list[Any]:
    """Every trigram of a phrase is one more posting list to intersect: a
    20-letter word costs three times a 10-letter one. A longer ASCII term is
    looked up by its first PREFIX letters and the few candidates checked by
    LIKE (which folds ASCII case as FTS5 does); other terms match whole."""
    subject_check = message_check = None
    if len(term) > PREFIX and term.isascii():
        phrase = _phrase(term[:PREFIX])
        subject_check = Ticket.subject.like(pattern, escape="\\")  # type: ignore[attr-defined]
        message_check = or_(col(Message.text).like(pattern, escape="\\"),
                            col(Message.from_addr).like(pattern, escape="\\"))
    else:
        phrase = _phrase(term)
    by_subject = select(Ticket.id).where(col(Ticket.id).in_(_fts(SUBJECT_TABLE, phrase)))
    by_message = select(Message.ticket_id).where(col(Message.id).in_(_fts(FTS_TABLE, phrase)))
    if subject_check is not None:
        by_subject = by_subject.where(subject_check)
        by_message = by_message.where(message_check)
    if directions is not None:
        by_message = by_message.where(col(Message.direction).in_(directions))
    return [col(Ticket.id).in_(by_subject), col(Ticket.id).in_(by_message)]


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _fts(table: str, phrase: str) -> Any:
    """The rowids of `table` matching the phrase (any substring, case-folded)."""
    return text(f"SELECT rowid FROM {table} WHERE {table} MATCH :phrase"
                ).bindparams(phrase=phrase).columns(column("rowid", Integer))


def _has_fts(session: Session) -> bool:
    """Whether migration 0011 made the FTS table (an SQLite without FTS5
    could not: then LIKE)."""
    bind = session.get_bind()
    cached = getattr(bind, "_maildesk_fts", None)
    if cached is None:
        cached = session.connection().execute(text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (:a, :b)"),
            {"a": FTS_TABLE, "b": SUBJECT_TABLE}).scalar() == 2
        if cached:  # once there, it stays; until then ask again
            bind._maildesk_fts = True  # type: ignore[union-attr]
    return bool(cached)
