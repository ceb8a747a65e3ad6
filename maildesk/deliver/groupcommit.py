"""Group commit for the worker's writes on SQLite.

SQLite has one writer, and a durable commit (synchronous=FULL) waits for
the disk. With the worker's threads each committing "sent" on its own, the
threads queued behind one another's fsync, and that queue, not CPU, was
what bounded the worker. Here a thread that finds others waiting to write
commits their writes with its own, in one transaction: one fsync for all
of them.

Each caller returns only after the commit that covers its write has
returned, so a write is exactly as durable as with its own commit. When
the shared transaction fails, every write in it is run again alone, so an
error reaches only the caller whose write causes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Connection, Engine


class _Job:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Connection], Any]) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, engine: Engine, writer_lock: AbstractContextManager[Any]) -> None:
        """``writer_lock`` is the lock every writer of this engine in this
        process holds while it writes (the Sender's)."""
        self._engine = engine
        self._writer_lock = writer_lock
        self._mutex = threading.Lock()
        self._pending: list[_Job] = []
        #: How many transactions and writes so far (for tests and profiling).
        self.commits = 0
        self.writes = 0

    def run(self, work: Callable[[Connection], Any],
            connection: Connection | None = None) -> Any:
        """Run ``work(connection)`` inside a transaction, possibly shared
        with other threads' writes; return its result once committed. The
        shared transaction runs on ``connection`` (no transaction open) when
        the caller commits for the others, else on one of the engine's."""
        job = _Job(work)
        with self._mutex:
            self._pending.append(job)
        with self._writer_lock:
            if not job.done:  # nobody took it along: commit what is waiting
                with self._mutex:
                    batch, self._pending = self._pending, []
                if connection is None:
                    with self._engine.connect() as own:
                        self._commit(batch, own)
                else:
                    self._commit(batch, connection)
        if job.error is not None:
            raise job.error
        return job.result

    def _commit(self, batch: list[_Job], connection: Connection) -> None:
        try:
            try:
                with connection.begin():
                    for job in batch:
                        job.result = job.work(connection)
                self.commits += 1
            except Exception:
                if len(batch) == 1:
                    raise
                for job in batch:  # again, each alone
                    try:
                        with connection.begin():
                            job.result = job.work(connection)
                        self.commits += 1
                    except Exception as exc:  # noqa: BLE001 - handed to its caller
                        job.result, job.error = None, exc
            self.writes += len(batch)
        except BaseException as exc:
            for job in batch:
                job.result, job.error = None, exc
            raise
        finally:
            for job in batch:
                job.done = True
