"""`maildesk serve`: builds the stages, starts them, stops them. Wiring only.

Accept: the SMTP/LMTP listeners (accept/smtp.py) hand each mail to the
group committer (accept/committer.py); its 250 waits only for that commit.
IMAP pollers (accept/imap.py) store and process a message before flagging
it. Process: the processor pool and the drainer (process/drainer.py) turn
committed rows into tickets; a kill -9 at any point loses nothing, the
drainer picks up whatever stayed pending. Deliver: the outbox ids each step
commits go to the broker (`dispatch`); with the embedded broker the actors
run here (deliver/runner.py). Rows other processes commit (`maildesk
ingest`, the CLI) wake serve (process/wakeup.py). The rules sweep (schedule/sweep.py) and the
web server (web/server.py) run beside them on the same event loop.

SIGTERM/SIGINT: stop accepting, let sessions finish within the grace
period, process what was accepted, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from maildesk import systemd
from maildesk.accept import smtp
from maildesk.accept.committer import GroupCommitter
from maildesk.accept.spool import Accepted, Incoming
from maildesk.config import Settings
from maildesk.deliver.broker import dispatch, embedded, make_broker
from maildesk.deliver.runner import WorkerRunner
from maildesk.process.drainer import Processor, drain
from maildesk.process.pipeline.context import make_context
from maildesk.process.service import RETRY_STATES, MailProcessor, Outcome
from maildesk.process.wakeup import Wakeup, silence
from maildesk.schedule.sweep import sweep_forever
from maildesk.web.metrics import DaemonMetrics

if TYPE_CHECKING:
    from aiohttp import web

    from maildesk.accept.imap import ImapPoller

log = logging.getLogger(__name__)


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
        self.ingestor = MailProcessor(settings, engine)
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
        # rows that `maildesk ingest` or the CLI commit: handed over within
        # a second instead of at the next sweeps (process/wakeup.py)
        silence(engine)
        self.wakeup = Wakeup(engine, self._wake_outbox if embedded(settings) else None,
                             self._wake_inbound)

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
            self.wakeup.note(outbox_ids)
            dispatch(self.broker, outbox_ids)

    def _wake_outbox(self, outbox_ids: list[int]) -> None:
        """Outbox rows another process committed: onto the embedded broker."""
        dispatch(self.broker, outbox_ids)

    def _wake_inbound(self, inbound_ids: list[int]) -> None:
        """Pending inbound rows another process stored and left: process them."""
        for inbound_id in inbound_ids:
            self.processor.submit(inbound_id)

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
            server = await smtp.listen_unix(factory, unix, self.settings.lmtp.socket_mode,
                                            self.settings.lmtp.socket_group)
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
        drainer = asyncio.create_task(
            drain(self.engine, self.processor, self.settings.serve.drain_interval_seconds,
                  self.stop), name="drainer")
        scheduler = asyncio.create_task(
            sweep_forever(self.engine, self.settings, self.ingestor.secret, self.stop,
                          self.dispatch), name="rules")
        wakeup = asyncio.create_task(self.wakeup.run(self.stop), name="wakeup")
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
        await self.shutdown([*pollers, drainer, scheduler, wakeup, watchdog])
        return 0

    def where(self) -> str:
        return ", ".join(f"{lst.name} {lst.where}" for lst in self.listeners) or "no listener"

    def _make_pollers(self) -> list[ImapPoller]:
        if not self.settings.imap:
            return []
        from maildesk.accept.imap import ImapPoller

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
