"""Running the actors: `maildesk worker`, or embedded inside `serve`.

Besides the Dramatiq worker threads, a sweep re-enqueues what the queue
does not hold: rows whose enqueue was lost, retries that are due, and rows
left "sending" by a worker that died (the at-least-once window).
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

import dramatiq
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.deliver.broker import declare, dispatch
from maildesk.deliver.sender import Sender
from maildesk.models import Outbox, utcnow

log = logging.getLogger(__name__)

#: A queued row is swept only when it has waited this many sweep intervals:
#: a fresh row is on its way through the queue already.
SWEEP_LAG = 2


def requeue_due(engine: Engine, settings: Settings, broker: dramatiq.Broker) -> int:
    """Enqueue due rows; returns how many."""
    table = Outbox.__table__
    now = utcnow()
    lag = timedelta(seconds=settings.worker.sweep_seconds * SWEEP_LAG)
    stale = now - timedelta(seconds=settings.worker.stale_sending_seconds)
    with engine.begin() as connection:
        revived = connection.execute(
            update(table).where(table.c.state == "sending", table.c.next_attempt_at < stale)
            .values(state="queued", last_error="worker stopped while sending; sending again")
            .returning(table.c.id)
        ).scalars().all()
        due = connection.execute(
            select(table.c.id)
            .where(table.c.state == "queued", table.c.next_attempt_at <= now - lag)
            .order_by(table.c.id).limit(1000)
        ).scalars().all()
        if due:  # not swept again before the next lag has passed
            connection.execute(
                update(table).where(table.c.id.in_(due)).values(next_attempt_at=now))
    if revived:
        log.warning("outbox %s were left sending by a stopped worker: sending again",
                    list(revived))
    if due:
        dispatch(broker, due)
    return len(due)


class WorkerRunner:
    def __init__(self, settings: Settings, engine: Engine, broker: dramatiq.Broker,
                 threads: int | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.sender = Sender(settings, engine)
        declare(broker, self.sender)
        self.threads = threads or settings.worker.threads
        self.worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=200)
        self.stopping = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="outbox-sweep",
                                         daemon=True)

    def start(self) -> None:
        self.worker.start()
        self._sweeper.start()
        log.info("worker started: %d threads on %s", self.threads,
                 type(self.broker).__name__)

    def _sweep_loop(self) -> None:
        while not self.stopping.wait(self.settings.worker.sweep_seconds):
            try:
                requeue_due(self.engine, self.settings, self.broker)
            except Exception:  # the next round tries again
                log.exception("outbox sweep failed")

    def stop(self, timeout: float = 30) -> None:
        self.stopping.set()
        self.worker.stop(timeout=int(timeout * 1000))
        self._sweeper.join(timeout=5)


def run_worker_processes(settings: Settings, engine: Engine) -> int:
    """`maildesk worker`: worker.processes processes of worker.threads
    threads each; SIGTERM/SIGINT stop them after the sends in flight."""
    import multiprocessing
    import signal

    if settings.worker.processes == 1:
        return _run_one(settings)
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_run_one, args=(settings,), name=f"worker-{i}")
                for i in range(settings.worker.processes)]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid:
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)


def _run_one(settings: Settings) -> int:
    import signal

    from maildesk import systemd
    from maildesk.db import make_engine
    from maildesk.deliver.broker import make_broker
    from maildesk.logsetup import setup_logging

    setup_logging(settings.log)
    engine = make_engine(settings.database_url)
    broker = make_broker(settings)
    runner = WorkerRunner(settings, engine, broker)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner.start()
    systemd.notify("READY=1")
    interval = systemd.watchdog_interval()
    while not stop.wait(interval or 3600):
        systemd.notify("WATCHDOG=1")
    systemd.notify("STOPPING=1")
    log.info("worker stopping: finishing sends in flight")
    runner.stop()
    broker.close()
    return 0
