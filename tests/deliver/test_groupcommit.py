"""GroupCommit: several threads' writes share one SQLite transaction; each
caller returns after the commit covering its write, and sees only its own
error."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from maildesk import db
from maildesk.deliver.groupcommit import GroupCommit


def _engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    return engine


def test_writes_of_waiting_threads_share_a_commit_and_are_committed_on_return(
        tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    lock = threading.Lock()
    group = GroupCommit(engine, lock)
    seen_after_return: list[bool] = []

    def writer(i: int) -> None:
        def work(connection: Connection) -> int:
            connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
            time.sleep(0.002)  # a slow write: others queue meanwhile
            return i

        assert group.run(work) == i
        with engine.connect() as connection:  # committed when run() returns
            seen_after_return.append(connection.execute(
                text("SELECT count(*) FROM t WHERE x = :x"), {"x": i}).scalar() == 1)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(seen_after_return) and len(seen_after_return) == 40
    assert group.writes == 40
    assert group.commits < 40  # some were shared
    engine.dispose()


def test_an_error_reaches_only_its_caller(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    lock = threading.Lock()
    group = GroupCommit(engine, lock)
    results: dict[int, object] = {}
    start = threading.Barrier(10)

    def writer(i: int) -> None:
        def work(connection: Connection) -> int:
            if i == 3:
                raise ValueError("bad row")
            connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
            time.sleep(0.002)
            return i

        start.wait()
        try:
            results[i] = group.run(work)
        except ValueError as exc:
            results[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(results.pop(3), ValueError)
    assert results == {i: i for i in range(10) if i != 3}
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT x FROM t ORDER BY x")).scalars().all()
    assert rows == [i for i in range(10) if i != 3]
    engine.dispose()


def test_a_single_write_fails_like_its_own_transaction(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    group = GroupCommit(engine, threading.Lock())

    def work(connection: Connection) -> None:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError):
        group.run(work)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()
