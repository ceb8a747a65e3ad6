"""serve's processor: accepted inbound rows become tickets, in worker processes.

`Processor` queues the ids a listener (or the drainer) hands it and runs
`MailProcessor.process` on small batches in `serve.processors` spawned
processes, so parsing and the pipeline never stall the listeners' event
loop. `drain` is the safety net: on start and every few seconds it submits
rows still pending (a crash between 250 and processing, another instance's
leftovers, a temporary fault's retry), so a kill -9 at any point loses
nothing. Outbox ids the mails caused go to the `notify` callback (the
daemon's broker): Process never imports Deliver.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.models import InboundMail, utcnow
from maildesk.process.service import RETRY_STATES, MailProcessor

log = logging.getLogger(__name__)

#: Most inbound rows one processing transaction covers: small, so that
#: SQLite's write lock is never held long against the listeners' commits.
PROCESS_BATCH = 8
#: The drainer leaves pending rows younger than this many drain intervals
#: alone: they wait in the queue of the instance that accepted them.
DRAIN_GRACE_INTERVALS = 3
#: prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


_PROCESSOR: MailProcessor | None = None


def _die_with_parent(parent: int) -> None:
    """Linux: end this processor process when serve ends, even by SIGKILL
    (outside systemd nobody else would stop it; it would wait forever)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own checks remain
        return
    if os.getppid() != parent:  # serve died before prctl took effect
        os._exit(1)


def _processor_start(settings: Settings, parent: int) -> None:
    """In a processor process: its own engine and ingestor."""
    global _PROCESSOR
    from maildesk.db import make_engine
    from maildesk.logsetup import setup_logging

    _die_with_parent(parent)
    setup_logging(settings.log)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when to stop
    _PROCESSOR = MailProcessor(settings, make_engine(settings.database_url))


def _processor_ready() -> int:
    """In a processor process: connect once, so the first mail after start
    pays for neither the spawn nor the first connection."""
    assert _PROCESSOR is not None
    with _PROCESSOR.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    return os.getpid()


def _processor_process(ids: list[int]) -> list[int]:
    """Process; returns the outbox ids the mails caused (the parent hands
    them to the broker: only it can reach the embedded one)."""
    assert _PROCESSOR is not None
    return [i for o in _PROCESSOR.process(ids, RETRY_STATES).values()
            for i in o.outbox_ids]


class Processor:
    """Turns accepted inbound rows into tickets, in small batches.

    Parsing and the pipeline are CPU work: they run in worker processes
    (serve.processors) so that the listeners' event loop keeps answering
    while tickets are made. Small batches keep SQLite's write lock short, so
    the listeners' commits never wait long. Several workers (or instances)
    share rows safely through the claim on each row.
    """

    def __init__(self, ingestor: MailProcessor, workers: int = 1,
                 notify: Callable[[list[int]], None] = lambda ids: None,
                 observe: Callable[[float], None] = lambda seconds: None) -> None:
        self.ingestor = ingestor
        self.notify = notify
        # metrics: accept time per inbound id (monotonic), observed once processed
        self.observe = observe
        self.accepted_at: dict[int, float] = {}
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        # ids queued or being processed here: the drainer never submits
        # them again (that would parse a mail twice and race our own claim)
        self.inflight: set[int] = set()
        self.processed = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._running = 0

    def start(self) -> None:
        if self.workers > 0:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_processor_start,
                initargs=(self.ingestor.settings, os.getpid()),
            )

    async def warm(self) -> None:
        """Spawn every processor process now, before the listeners open.

        The pool spawns on demand; a fresh interpreter importing maildesk
        takes most of a second (more on a busy machine), which the first
        mail's acknowledgement would otherwise wait for. One task per
        worker, submitted together, spawns all of them.
        """
        if self._pool is None:
            return
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _processor_ready)
                               for _ in range(self.workers)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, inbound_id: int, accepted_at: float | None = None) -> None:
        if accepted_at is not None:  # metrics: from a listener, not the drainer
            self.accepted_at.setdefault(inbound_id, accepted_at)
        if inbound_id in self.inflight:
            return
        self.inflight.add(inbound_id)
        self.idle.clear()
        self.queue.put_nowait(inbound_id)

    async def run(self) -> None:
        slots = asyncio.Semaphore(max(1, self.workers))
        while True:
            ids = [await self.queue.get()]
            while not self.queue.empty() and len(ids) < PROCESS_BATCH:
                ids.append(self.queue.get_nowait())
            await slots.acquire()
            self._running += 1
            task = asyncio.create_task(self._process(ids))
            task.add_done_callback(lambda _t: slots.release())

    async def _process(self, ids: list[int]) -> None:
        try:
            if self._pool is not None:
                loop = asyncio.get_running_loop()
                outbox_ids = await loop.run_in_executor(self._pool, _processor_process, ids)
            else:
                outcomes = await asyncio.to_thread(self.ingestor.process, ids, RETRY_STATES)
                outbox_ids = [i for o in outcomes.values() for i in o.outbox_ids]
            self.processed += len(ids)
            done = time.monotonic()  # metrics: accept -> ticket committed
            for inbound_id in ids:
                if (accepted_at := self.accepted_at.pop(inbound_id, None)) is not None:
                    self.observe(done - accepted_at)
            if outbox_ids:
                self.notify(outbox_ids)
        except Exception:  # the rows stay pending; the drainer tries again
            log.exception("processing inbound %s failed; will retry", ids)
            await asyncio.sleep(1)
        finally:
            self.inflight.difference_update(ids)
            self._running -= 1
            if self.queue.empty() and self._running == 0:
                self.idle.set()


def pending_ids(engine: Engine, grace: float = 0.0, limit: int = 10_000) -> list[int]:
    """Pending rows due for processing: accepted at least `grace` seconds
    ago (younger ones are still in the queue of the instance that accepted
    them) and past the backoff of a temporary fault. PostgreSQL: rows that
    another instance has claimed and not yet committed are skipped (SKIP
    LOCKED), so nobody parses a mail that is being turned into a ticket."""
    table = InboundMail.__table__
    now = utcnow()
    statement = (
        select(table.c.id)
        .where(table.c.state == "pending",
               table.c.received_at <= now - timedelta(seconds=grace),
               or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now))
        .order_by(table.c.id).limit(limit)
    )
    if engine.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    with engine.connect() as connection:
        rows = connection.execute(statement).scalars().all()
    return list(rows)


async def drain(engine: Engine, processor: Processor, interval: float, stop: asyncio.Event,
                grace_intervals: int = DRAIN_GRACE_INTERVALS) -> None:
    """Pending rows on start (crash recovery), then every few seconds.

    A database error ends one round, never the loop: after an outage this
    is what processes the mails whose processing failed meanwhile (they
    stay pending, and nothing else looks at them again).
    """
    while True:
        try:
            grace = grace_intervals * interval
            ids = await asyncio.to_thread(pending_ids, engine, grace)
            ids = [i for i in ids if i not in processor.inflight]
        except Exception:  # the next round tries again
            log.exception("drainer: could not look for pending mails; will retry")
            ids = []
        if ids:
            log.info("drainer: %d accepted mails wait for processing", len(ids))
            for inbound_id in ids:
                processor.submit(inbound_id)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
