"""`maildesk serve`: listeners, IMAP pollers and the drainer in one process.

Accept and Process are decoupled: a listener's 250 waits only for the
spool's commit (grouped: concurrent sessions share one commit, one fsync),
and the processor turns committed inbound rows into tickets in batches.
On start, and every few seconds, the drainer picks up inbound rows still
pending (a crash between 250 and processing, another instance's leftovers),
so a kill -9 at any point loses nothing.

SIGTERM/SIGINT: stop accepting, let sessions finish within the grace
period, process what was accepted, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from maildesk import systemd
from maildesk.config import Settings
from maildesk.ingest import smtp
from maildesk.ingest.spool import Accepted, Incoming, accept
from maildesk.models import InboundMail, utcnow
from maildesk.pipeline.context import make_context
from maildesk.service import RETRY_STATES, Ingestor, Outcome
from maildesk.web.metrics import DaemonMetrics
from maildesk.worker.broker import dispatch, embedded, make_broker
from maildesk.worker.runner import WorkerRunner

if TYPE_CHECKING:
    from aiohttp import web

    from maildesk.ingest.imap import ImapPoller

log = logging.getLogger(__name__)

#: Most mails one commit of the spool covers.
ACCEPT_BATCH = 64
#: Most inbound rows one processing transaction covers: small, so that
#: SQLite's write lock is never held long against the listeners' commits.
PROCESS_BATCH = 8
#: The drainer leaves pending rows younger than this many drain intervals
#: alone: they wait in the queue of the instance that accepted them.
DRAIN_GRACE_INTERVALS = 3
#: prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class GroupCommitter:
    """Accept requests from concurrent sessions, committed together.

    Each session awaits its own future; one database transaction stores
    everything that queued up meanwhile. Durability per mail is unchanged
    (its 250 comes after the commit that holds it), the fsyncs are shared.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: asyncio.Queue[tuple[Incoming, asyncio.Future[Accepted]]] = asyncio.Queue()

    async def store(self, incoming: Incoming) -> Accepted:
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        await self.queue.put((incoming, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < ACCEPT_BATCH:
                batch.append(self.queue.get_nowait())
            try:
                results = await asyncio.to_thread(accept, self.engine, [i for i, _ in batch])
            except Exception as exc:  # noqa: BLE001 — every waiting session answers 451
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


_WORKER_INGESTOR: Ingestor | None = None


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


def _worker_start(settings: Settings, parent: int) -> None:
    """In a processor process: its own engine and ingestor."""
    global _WORKER_INGESTOR
    from maildesk.db import make_engine
    from maildesk.logsetup import setup_logging

    _die_with_parent(parent)
    setup_logging(settings.log)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when to stop
    _WORKER_INGESTOR = Ingestor(settings, make_engine(settings.database_url))


def _worker_ready() -> int:
    """In a processor process: connect once, so the first mail after start
    pays for neither the spawn nor the first connection."""
    assert _WORKER_INGESTOR is not None
    with _WORKER_INGESTOR.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    return os.getpid()


def _worker_process(ids: list[int]) -> list[int]:
    """Process; returns the outbox ids the mails caused (the parent hands
    them to the broker: only it can reach the embedded one)."""
    assert _WORKER_INGESTOR is not None
    return [i for o in _WORKER_INGESTOR.process(ids, RETRY_STATES).values()
            for i in o.outbox_ids]


class Processor:
    """Turns accepted inbound rows into tickets, in small batches.

    Parsing and the pipeline are CPU work: they run in worker processes
    (serve.processors) so that the listeners' event loop keeps answering
    while tickets are made. Small batches keep SQLite's write lock short, so
    the listeners' commits never wait long. Several workers (or instances)
    share rows safely through the claim on each row.
    """

    def __init__(self, ingestor: Ingestor, workers: int = 1,
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
                self.workers, mp_context=context, initializer=_worker_start,
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
        await asyncio.gather(*(loop.run_in_executor(self._pool, _worker_ready)
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
                outbox_ids = await loop.run_in_executor(self._pool, _worker_process, ids)
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


@dataclass
class Listener:
    name: str
    server: asyncio.AbstractServer
    stats: smtp.ListenerStats
    where: str


class Daemon:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.ingestor = Ingestor(settings, engine)
        self.committer = GroupCommitter(engine)
        self.broker = make_broker(settings)
        self.worker: WorkerRunner | None = None
        # web: metrics on a private registry; the web server (if enabled) serves them
        self.metrics = DaemonMetrics(lambda: [(lst.name, lst.stats) for lst in self.listeners],
                                     lambda: [poller.status() for poller in self.pollers])
        self.web: web.AppRunner | None = None
        self.processor = Processor(self.ingestor, settings.serve.processors, self.dispatch,
                                   self.metrics.ingest_seconds.observe)
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.listeners: list[Listener] = []
        self.pollers: list[ImapPoller] = []
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ctx = make_context(settings)

    async def store(self, incoming: Incoming) -> Accepted:
        """What a listener calls: commit, then queue the row for processing."""
        started = time.monotonic()  # metrics: maildesk_ingest_seconds
        accepted = await self.committer.store(incoming)
        # A redelivery of a mail whose processing failed (or never ran) is
        # the moment to process it again, as with the pipe transport.
        if not accepted.duplicate or accepted.state in RETRY_STATES:
            self.processor.submit(accepted.inbound_id, started)
        return accepted

    async def ingest_now(self, raw: bytes) -> Outcome:
        """For the IMAP poller: stored AND processed when it returns, so the
        message is flagged only after its ticket is committed."""
        outcome = await asyncio.to_thread(self.ingestor.ingest, Incoming(raw, "imap"))
        self.dispatch(list(outcome.outbox_ids))
        return outcome

    def dispatch(self, outbox_ids: list[int]) -> None:
        """Notifications committed by processing: onto the broker."""
        if outbox_ids:
            dispatch(self.broker, outbox_ids)

    async def start_listener(self, source: str) -> Listener:
        section = self.settings.smtp if source == "smtp" else self.settings.lmtp
        stats = smtp.ListenerStats()
        handler = smtp.MaildeskHandler(self._ctx.is_ours, self.store, source, stats)
        tls = smtp.tls_context(self.settings.smtp.tls_cert, self.settings.smtp.tls_key)
        config = smtp.ListenerConfig(
            source=source, hostname=self.settings.smtp.hostname or socket.getfqdn(),
            max_bytes=self.settings.limits.max_message_bytes,
            max_connections=section.max_connections, timeout=section.timeout_seconds,
            tls_context=tls if source == "smtp" else None,
        )
        factory = smtp.protocol_factory(config, handler, stats)
        loop = asyncio.get_running_loop()
        unix = getattr(section, "socket", "")
        if unix:
            with suppress(FileNotFoundError):
                os.unlink(unix)
            server = await loop.create_unix_server(factory, unix)
            where = unix
        else:
            server = await loop.create_server(factory, section.host, section.port,
                                              reuse_address=True)
            port = server.sockets[0].getsockname()[1]
            where = f"{section.host}:{port}"
        log.info("%s listener on %s (max %d connections, SIZE %d)", source.upper(), where,
                 section.max_connections, config.max_bytes)
        listener = Listener(source, server, stats, where)
        self.listeners.append(listener)
        return listener

    async def rules_sweep(self) -> None:
        """The time-based rules every rules.sweep_seconds (all instances may
        run it: each ticket is claimed once)."""
        from maildesk.sweep import run_sweep

        while not self.stop.is_set():
            try:
                report = await asyncio.to_thread(run_sweep, self.engine, self.settings,
                                                 self.ingestor.secret, utcnow())
                self.dispatch(report.outbox_ids)
            except Exception:  # the next round tries again
                log.exception("rules sweep failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.settings.rules.sweep_seconds)

    async def drain(self) -> None:
        """Pending rows on start (crash recovery), then every few seconds.

        A database error ends one round, never the loop: after an outage this
        is what processes the mails whose processing failed meanwhile (they
        stay pending, and nothing else looks at them again).
        """
        while True:
            try:
                grace = DRAIN_GRACE_INTERVALS * self.settings.serve.drain_interval_seconds
                ids = await asyncio.to_thread(pending_ids, self.engine, grace)
                ids = [i for i in ids if i not in self.processor.inflight]
            except Exception:  # the next round tries again
                log.exception("drainer: could not look for pending mails; will retry")
                ids = []
            if ids:
                log.info("drainer: %d accepted mails wait for processing", len(ids))
                for inbound_id in ids:
                    self.processor.submit(inbound_id)
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(),
                                       self.settings.serve.drain_interval_seconds)
            if self.stop.is_set():
                return

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig)
        self.processor.start()
        await self.processor.warm()
        if embedded(self.settings):  # nothing else would send: run the actors here
            # One sending thread: more would compete with the listeners for
            # the interpreter and SQLite's lock (p99 of the 250 rose from
            # ~100 ms to ~340 ms at 4 threads in bench/smtp_load.py).
            self.worker = WorkerRunner(self.settings, self.engine, self.broker, threads=1)
            self.worker.start()
        self._tasks = [
            asyncio.create_task(self.committer.run(), name="committer"),
            asyncio.create_task(self.processor.run(), name="processor"),
        ]
        drainer = asyncio.create_task(self.drain(), name="drainer")
        scheduler = asyncio.create_task(self.rules_sweep(), name="rules")
        if self.settings.smtp.enabled:
            await self.start_listener("smtp")
        if self.settings.lmtp.enabled:
            await self.start_listener("lmtp")
        self.pollers = self._make_pollers()  # before web: /healthz shows them
        if self.settings.web.enabled:  # web: /healthz, /metrics (OSError if the port is taken)
            from maildesk.web.server import start_web

            self.web = await start_web(self.settings, self.engine, self.metrics, self.dispatch,
                                       lambda: self.listeners, lambda: self.pollers)
        pollers = [asyncio.create_task(poller.run(self.stop), name=f"imap:{poller.account.name}")
                   for poller in self.pollers]
        systemd.notify("READY=1", f"STATUS=listening on {self.where()}")
        watchdog = asyncio.create_task(systemd.watchdog(self.stop), name="watchdog")
        log.info("maildesk serve is ready (instance %s)", self.instance_id)
        await self.stop.wait()
        systemd.notify("STOPPING=1")
        await self.shutdown([*pollers, drainer, scheduler, watchdog])
        return 0

    def where(self) -> str:
        return ", ".join(f"{lst.name} {lst.where}" for lst in self.listeners) or "no listener"

    def _make_pollers(self) -> list[ImapPoller]:
        if not self.settings.imap:
            return []
        from maildesk.ingest.imap import ImapPoller

        return [ImapPoller(account, self.engine, self.ingest_now, self.instance_id)
                for account in self.settings.imap]

    def request_stop(self, sig: signal.Signals | None = None) -> None:
        if not self.stop.is_set():
            log.info("%s received: stopping", sig.name if sig else "stop")
            self.stop.set()

    async def shutdown(self, tasks: Sequence[asyncio.Task[None]]) -> None:
        grace = self.settings.serve.grace_seconds
        for listener in self.listeners:
            listener.server.close()  # no new connections
        for listener in self.listeners:
            cut = await smtp.close_sessions(listener.stats, grace)
            if cut:
                log.warning("%s: %d sessions still open after %.0f s were closed "
                            "(their mails were not acknowledged; the senders retry)",
                            listener.name, cut, grace)
        if self.web is not None:  # web: stops after the listeners (health says 503 meanwhile)
            await self.web.cleanup()
        with suppress(TimeoutError):  # pollers stop on their own when stop is set
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), grace)
        # What was acknowledged gets processed now, within the grace period;
        # anything left stays pending and is drained on the next start.
        with suppress(TimeoutError):
            await asyncio.wait_for(self.processor.idle.wait(), grace)
        for task in [*self._tasks, *tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *tasks, return_exceptions=True)
        await asyncio.to_thread(self.processor.close)
        if self.worker is not None:  # sends in flight finish; queued rows stay queued
            await asyncio.to_thread(self.worker.stop, grace)
        self.broker.close()
        for listener in self.listeners:
            with suppress(Exception):
                await listener.server.wait_closed()
        log.info("maildesk serve stopped: %s", ", ".join(
            f"{lst.name} accepted {lst.stats.accepted}" for lst in self.listeners) or "done")


def serve(settings: Settings, engine: Engine) -> int:
    return asyncio.run(Daemon(settings, engine).run())
