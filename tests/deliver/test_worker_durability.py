"""The worker's commits: the claim may skip the flush to disk, nothing else
may, and the connection it used is back to full durability afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from maildesk import db


def _durability(connection: Connection) -> str:
    if connection.dialect.name == "sqlite":
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
            connection.exec_driver_sql("PRAGMA synchronous").scalar()]
    return str(connection.exec_driver_sql("SHOW synchronous_commit").scalar())


def test_only_the_not_durable_transaction_skips_the_flush(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            durable = _durability(connection)
        assert durable in ("FULL", "on")
        with db.begin_not_durable(engine) as connection:
            assert _durability(connection) in ("NORMAL", "off")
            connection.execute(text("SELECT 1"))
        for _ in range(3):  # whichever pooled connection comes next
            with engine.connect() as connection:
                assert _durability(connection) == durable
    finally:
        engine.dispose()


def test_a_failed_not_durable_transaction_rolls_back_and_restores(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE probe (x INTEGER)"))
        with pytest.raises(RuntimeError), db.begin_not_durable(engine) as connection:
            connection.execute(text("INSERT INTO probe VALUES (1)"))
            raise RuntimeError("boom")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM probe")).scalar() == 0
            assert _durability(connection) in ("FULL", "on")
    finally:
        engine.dispose()
