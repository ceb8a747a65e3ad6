"""Waking serve when another process wrote mail: `maildesk ingest`, the CLI.

serve dispatches the outbox ids its own steps commit at once, but a row
another process commits (the pipe transport's `maildesk ingest`, `maildesk
tickets reply`, `maildesk outbox retry`) reaches the embedded broker only
through the outbox sweep: two sweep intervals later (10-14 s measured).
This module closes that gap without a second queue: the database stays the
only record, a wakeup only says "look now".

PostgreSQL: every process but serve NOTIFYs ``maildesk_wakeup`` in the very
transaction that inserts outbox rows (or queues them again) or inbound rows
(:func:`announce`; the notification is delivered only if that transaction
commits, so serve never looks before the rows are visible). serve LISTENs on
a dedicated connection (:class:`Wakeup`) and looks at once.

SQLite has no NOTIFY: serve polls every half second and looks when the
newest outbox or inbound id moved (two index lookups), or when SQLite's
``PRAGMA data_version`` did: it changes with every commit of another
connection, and it is the only sign of a commit that inserts nothing, such
as `maildesk outbox retry` putting a failed row back in the queue (a row's
id does not move). serve's own commits move it too; the look they cause is
one more index lookup, and what serve dispatched itself is not dispatched
again.

"Looking" is the same on both: queued outbox rows that are due and that
serve has not dispatched itself go onto the broker (the claim on each row
makes a second enqueue harmless, so a race costs a skipped send, never a
second mail); pending inbound rows go to the processor once they are
``settle`` seconds old, because the process that stored them (`maildesk
ingest`) is processing them itself at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine

from maildesk.models import InboundMail, Outbox, utcnow
from maildesk.process.drainer import pending_ids

log = logging.getLogger(__name__)

#: The PostgreSQL channel; the payload names what was written ("outbox",
#: "inbound" or both, comma separated).
CHANNEL = "maildesk_wakeup"
OUTBOX = "outbox"
INBOUND = "inbound"
#: SQLite: how often serve looks at the newest ids and the data version.
POLL_SECONDS = 0.5
#: PostgreSQL: how long one wait for a notification lasts (serve's stop is
#: noticed between two waits).
LISTEN_SECONDS = 1.0
#: A pending inbound row younger than this belongs to the process that
#: stored it (`maildesk ingest` processes its mail right after storing it).
SETTLE_SECONDS = 1.0
#: After a lost LISTEN connection: the first retry, doubling up to the cap.
RECONNECT_SECONDS = (1.0, 30.0)
#: Most outbox ids one look dispatches (the sweep takes the rest).
LOOK_LIMIT = 1000

_WRITE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE)\s+(?:"?\w+"?\.)?"?(outbox|inbound_mail)"?[\s(]',
                    re.IGNORECASE)
_INFO_KEY = "maildesk_wakeup"


def written(statement: str) -> str | None:
    """What a SQL statement writes that serve must hear about: "outbox" for
    an insert or update of outbox rows (new or queued again), "inbound" for
    new inbound rows, None for anything else (an inbound row's later
    updates are serve's own processing). Pure."""
    match = _WRITE.match(statement)
    if match is None:
        return None
    verb, table = match.group(1).split()[0].upper(), match.group(2).lower()
    if table == "outbox":
        return OUTBOX
    return INBOUND if verb == "INSERT" else None


def kinds_of(payload: str) -> set[str]:
    """The kinds a notification's payload names (unknown words are ignored,
    an empty payload means "look at everything"). Pure."""
    words = {w.strip() for w in payload.split(",") if w.strip()}
    return (words & {OUTBOX, INBOUND}) if words else {OUTBOX, INBOUND}


def moved(before: tuple[int, int, int], now: tuple[int, int, int]) -> set[str]:
    """SQLite: what to look at, given two polls of (newest outbox id, newest
    inbound id, data version). A new inbound id: inbound. Any commit (the
    data version moved) may have queued outbox rows, new or again (`outbox
    retry` adds no id): the outbox. Pure."""
    kinds = set()
    if now[0] != before[0] or now[2] != before[2]:
        kinds.add(OUTBOX)
    if now[1] != before[1]:
        kinds.add(INBOUND)
    return kinds


# -- the writing side ----------------------------------------------------------

def announce(engine: Engine) -> None:
    """Make every commit on this engine that wrote outbox or inbound rows
    NOTIFY serve, inside that commit (PostgreSQL; on SQLite serve polls).
    The CLI installs it on its engine; idempotent."""
    if engine.dialect.name != "postgresql" or event.contains(engine, "commit", _notify):
        return
    event.listen(engine, "after_cursor_execute", _note)
    event.listen(engine, "commit", _notify)
    event.listen(engine, "rollback", _forget)


def silence(engine: Engine) -> None:
    """Undo :func:`announce`: serve hands its own rows over directly and
    must not wake itself at every claim."""
    for name, fn in (("after_cursor_execute", _note), ("commit", _notify),
                     ("rollback", _forget)):
        if event.contains(engine, name, fn):
            event.remove(engine, name, fn)


def _note(connection: Connection, _cursor: Any, statement: str, _parameters: Any,
          _context: Any, _executemany: bool) -> None:
    kind = written(statement)
    if kind is not None:
        connection.info.setdefault(_INFO_KEY, set()).add(kind)


def _notify(connection: Connection) -> None:
    """Runs right before the COMMIT is sent: the NOTIFY is part of the
    transaction (sent on the DBAPI cursor; SQLAlchemy is mid-commit)."""
    kinds = connection.info.pop(_INFO_KEY, None)
    if not kinds:
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a commit always has a connection
        return
    cursor = dbapi.cursor()
    try:
        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, ",".join(sorted(kinds))))
    finally:
        cursor.close()


def _forget(connection: Connection) -> None:
    connection.info.pop(_INFO_KEY, None)


# -- serve's side --------------------------------------------------------------

def due_outbox(engine: Engine, limit: int = LOOK_LIMIT) -> list[int]:
    """Queued outbox rows whose time has come (ix_outbox_state_next)."""
    table = Outbox.__table__
    with engine.connect() as connection:
        return list(connection.execute(
            select(table.c.id).where(table.c.state == "queued",
                                     table.c.next_attempt_at <= utcnow())
            .order_by(table.c.id).limit(limit)).scalars())


def newest_ids(engine: Engine) -> tuple[int, int]:
    """(newest outbox id, newest inbound id); 0 for an empty table."""
    outbox, inbound = Outbox.__table__, InboundMail.__table__
    with engine.connect() as connection:
        return (connection.execute(select(func.max(outbox.c.id))).scalar() or 0,
                connection.execute(select(func.max(inbound.c.id))).scalar() or 0)


def open_data_version(engine: Engine) -> sqlite3.Connection:
    """SQLite: a connection of its own for ``PRAGMA data_version``, which
    counts the commits of *other* connections only, so it must be the same
    connection at every poll (not one of the pool's). It never writes. Opened
    after the engine's first connection, which made the file (privately)."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    return sqlite3.connect(*args, **{**kwargs, "check_same_thread": False})


def data_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA data_version").fetchone()[0])


class Wakeup:
    """serve's ear for rows other processes commit (see the module doc).

    ``outbox`` receives outbox ids to put on the broker (None: serve does
    not send, a Redis worker does, and the writers enqueue there
    themselves); ``inbound`` receives pending inbound ids to process. Both
    are called on the event loop that runs :meth:`run`.
    """

    def __init__(self, engine: Engine, outbox: Callable[[list[int]], None] | None,
                 inbound: Callable[[list[int]], None], *, poll_seconds: float = POLL_SECONDS,
                 settle_seconds: float = SETTLE_SECONDS) -> None:
        self.engine = engine
        self.outbox = outbox
        self.inbound = inbound
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        #: outbox ids serve dispatched itself and that were still queued at
        #: the last look: not dispatched a second time
        self._dispatched: set[int] = set()
        self._lock = threading.Lock()
        self._inbound_task: asyncio.Task[None] | None = None
        self._inbound_again = False
        self.looks = 0  # how often it looked (tests, debugging)

    def note(self, outbox_ids: Iterable[int]) -> None:
        """serve dispatched these itself (any thread)."""
        with self._lock:
            self._dispatched.update(outbox_ids)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if self.engine.dialect.name == "postgresql":
                await self._listen(stop)
            else:
                await self._poll(stop)
        finally:
            if self._inbound_task is not None:
                self._inbound_task.cancel()
                with suppress(asyncio.CancelledError):
                    await self._inbound_task

    async def look(self, kinds: set[str]) -> None:
        """Hand over what waits: due outbox rows now, pending inbound rows
        once they have settled."""
        self.looks += 1
        if OUTBOX in kinds and self.outbox is not None:
            ids = await asyncio.to_thread(due_outbox, self.engine)
            fresh = self._fresh(ids)
            if fresh:
                log.debug("wakeup: outbox %s written elsewhere: dispatching", fresh)
                self.outbox(fresh)
        if INBOUND in kinds:
            if self._inbound_task is None or self._inbound_task.done():
                self._inbound_task = asyncio.create_task(self._settled_inbound(),
                                                         name="wakeup-inbound")
            else:
                self._inbound_again = True

    def _fresh(self, due: list[int]) -> list[int]:
        with self._lock:
            queued = set(due)
            fresh = [i for i in due if i not in self._dispatched]
            # forget what is no longer queued: the set stays as small as the queue
            self._dispatched = (self._dispatched & queued) | set(fresh)
        return fresh

    async def _settled_inbound(self) -> None:
        while True:
            self._inbound_again = False
            await asyncio.sleep(self.settle_seconds)
            try:
                ids = await asyncio.to_thread(pending_ids, self.engine, self.settle_seconds)
            except Exception:  # the drainer looks again anyway
                log.exception("wakeup: could not look for pending mails")
                ids = []
            if ids:
                self.inbound(ids)
            if not self._inbound_again:
                return

    async def _poll(self, stop: asyncio.Event) -> None:
        before: tuple[int, int, int] | None = None
        failing = False
        marker: sqlite3.Connection | None = None
        try:
            while not stop.is_set():
                try:
                    ids = await asyncio.to_thread(newest_ids, self.engine)
                    if marker is None:
                        marker = await asyncio.to_thread(open_data_version, self.engine)
                    now = (*ids, await asyncio.to_thread(data_version, marker))
                    if failing:
                        log.info("wakeup: the database answers again")
                    if before is None:  # as on PostgreSQL: whatever was written unheard
                        await self.look({OUTBOX, INBOUND})
                    elif kinds := moved(before, now):
                        await self.look(kinds)
                    failing = False
                    before = now
                except Exception as exc:  # noqa: BLE001 — the sweeps still run; try again
                    if marker is not None:  # opened afresh once the database answers
                        with suppress(Exception):
                            marker.close()
                        marker = None
                    before = None  # another connection's data version is no comparison
                    if not failing:
                        log.warning("wakeup: cannot read the newest ids (%s); "
                                    "mail written elsewhere waits for the sweep", exc)
                    failing = True
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
        finally:
            if marker is not None:
                marker.close()

    async def _listen(self, stop: asyncio.Event) -> None:
        delay = RECONNECT_SECONDS[0]
        while not stop.is_set():
            connection = None
            try:
                connection = await asyncio.to_thread(self._open)
                log.info("wakeup: listening on %s", CHANNEL)
                delay = RECONNECT_SECONDS[0]
                # whatever was written while nobody listened
                await self.look({OUTBOX, INBOUND})
                while not stop.is_set():
                    kinds = await asyncio.to_thread(_wait, connection, LISTEN_SECONDS)
                    if kinds:
                        await self.look(kinds)
            except Exception as exc:  # noqa: BLE001 — lost or refused: the sweeps still run
                log.warning("wakeup: no LISTEN connection (%s); retrying in %.0f s, mail "
                            "written elsewhere waits for the sweep meanwhile", exc, delay)
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, RECONNECT_SECONDS[1])
            finally:
                if connection is not None:
                    with suppress(Exception):
                        await asyncio.to_thread(connection.close)

    def _open(self) -> Any:
        """A connection of its own (not the pool's: it is held for good),
        with the engine's connect arguments, in autocommit, listening."""
        dialect = self.engine.dialect
        args, kwargs = dialect.create_connect_args(self.engine.url)
        connection = dialect.loaded_dbapi.connect(*args, **kwargs)
        connection.autocommit = True
        connection.execute(f"LISTEN {CHANNEL}")
        return connection


def _wait(connection: Any, timeout: float) -> set[str]:
    """Block up to ``timeout`` for notifications; the kinds they name."""
    kinds: set[str] = set()
    for notification in connection.notifies(timeout=timeout, stop_after=1):
        kinds |= kinds_of(notification.payload)
    return kinds
