"""Text search (store/search.py) on SQLite's trigram FTS table and
PostgreSQL's pg_trgm index: a substring of any message's text or sender,
or of the subject, found without regard to case; a short term, a term with
LIKE's wildcards and a ticket number still mean what they say; a message
added later is found at once (the triggers keep the index current)."""

from __future__ import annotations

from sqlalchemy import text

from maildesk import db
from tests.conftest import Desk
from tests.mailfactory import make_mail


def _found(desk: Desk, term: str) -> set[int]:
    return {t["number"] for t in desk.list("--search", term)}


def test_search_finds_substrings_case_folded_and_stays_current(desk: Desk) -> None:
    _, heating = desk.ingest(make_mail(subject="Heizung", sender="erika@kunde.de",
                                       body="Die Wärmepumpe im Keller macht GERÄUSCHE.\n",
                                       message_id="<s1@kunde.de>"))
    _, printer = desk.ingest(make_mail(subject="Drucker", sender="max@firma.de",
                                       body="Papierstau, 100% reproduzierbar.\n",
                                       message_id="<s2@firma.de>"))
    heating, printer = heating["ticket"], printer["ticket"]
    assert _found(desk, "wärmepumpe") == {heating}
    assert _found(desk, "geräusche") == {heating}  # case folded beyond ASCII
    assert _found(desk, "max@firma") == {printer}  # the sender
    assert _found(desk, "druck") == {printer}  # the subject
    assert _found(desk, "Pa") == {printer}  # two letters: no trigram, still found
    assert _found(desk, "100%") == {printer} and _found(desk, "0%r") == set()
    assert _found(desk, f"#{heating}") == {heating}
    # a long term: looked up by its first letters, then checked whole
    assert _found(desk, "PAPIERSTAU, 100") == {printer}
    assert _found(desk, "Papierstau, 200") == set()
    assert _found(desk, "Wärmepumpe im Keller") == {heating}
    assert _found(desk, "Rohrbruch") == set()
    desk.ingest(make_mail(subject="AW: Heizung", sender="erika@kunde.de",
                          body="Jetzt tropft es: Rohrbruch!\n", in_reply_to="<s1@kunde.de>",
                          message_id="<s3@kunde.de>"))
    assert _found(desk, "rohrbruch") == {heating}


def test_the_search_index_exists_where_the_database_has_one(desk: Desk) -> None:
    engine = desk.engine()
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            found = connection.execute(text(
                "SELECT name FROM sqlite_master WHERE name = 'message_search'")).scalar()
        else:
            found = connection.execute(text(
                "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_message_text_trgm' "
                "AND schemaname = current_schema()")).scalar()
    assert found, "migration 0011 made no search index"
    assert db.current_revision(engine) == db.SCHEMA_REVISION
    engine.dispose()
