"""/healthz's checks: database, broker, listeners and IMAP accounts.

Blocking work (the database, Redis) runs in daemon threads with a timeout,
one at a time per kind (`OffLoop`): a hung database can neither stall the
event loop and with it the SMTP listeners, nor pile up threads, nor keep
the process from exiting.

The checks read what they are handed (listeners, IMAP pollers) through
small Protocols, never the daemon itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from maildesk.accept.imap import AccountStatus

log = logging.getLogger(__name__)

#: Longest a health probe (SELECT 1, Redis PING) may take.
CHECK_TIMEOUT = 2.0

T = TypeVar("T")


# -- blocking calls off the event loop -----------------------------------------------------------


def _in_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run fn in a new daemon thread; its result arrives as a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    # Waiters may all have timed out: retrieve the outcome so that asyncio
    # does not warn about an exception nobody read.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def deliver(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 — handed to the awaiting coroutine
            error = exc
        with suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=target, name=f"maildesk-web-{name}", daemon=True).start()
    return future


class OffLoop:
    """Blocking calls for the web side, single-flight per key: while one
    call of a kind runs, later callers wait for that one (up to their own
    timeout) instead of starting another. So a hung database costs one
    thread, however often /healthz is polled."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, fn: Callable[[], T], timeout: float) -> T:
        """fn's result; TimeoutError after `timeout` s (fn keeps running)."""
        future = self._inflight.get(key)
        if future is None or future.done():
            future = _in_thread(fn, key)
            self._inflight[key] = future
        return await asyncio.wait_for(asyncio.shield(future), timeout)


# -- health --------------------------------------------------------------------------------------


@dataclass
class Check:
    ok: bool
    detail: str


class ListenerLike(Protocol):
    """What the health check reads of a daemon listener."""

    name: str
    where: str
    server: asyncio.AbstractServer


class AccountLike(Protocol):
    """What the health check reads of an IMAP poller (accept/imap.py)."""

    def status(self) -> AccountStatus: ...


class Health:
    """The checks behind /healthz: database, broker, listeners, IMAP accounts.

    `status` is "fail" (HTTP 503) when the database, the broker or a
    listener is down: this instance cannot take mail. It is "degraded"
    (HTTP 200) when only an IMAP account fails: its mail waits on the IMAP
    server, everything else works, so a load balancer keeps the instance
    while monitoring sees the account. Details stay short (an error's type,
    not its text: the page may be reachable from outside); the full error
    goes to the log.

    The report also names this process (`pid`) and its listeners' TCP
    ports (`ports`, no hosts), so that `maildesk check` can tell a port
    held by this maildesk from one taken by another program.
    """

    def __init__(self, engine: Engine, broker_url: str,
                 listeners: Callable[[], Sequence[ListenerLike]], calls: OffLoop,
                 timeout: float = CHECK_TIMEOUT,
                 accounts: Callable[[], Sequence[AccountLike]] = list) -> None:
        self.engine = engine
        self.broker_url = broker_url
        self.listeners = listeners
        self.accounts = accounts
        self.calls = calls
        self.timeout = timeout
        self._redis: Any = None

    async def run(self) -> dict[str, Any]:
        database, broker = await asyncio.gather(self.database(), self.broker())
        checks = {"database": database, "broker": broker, "listeners": self.listening()}
        ok = all(check.ok for check in checks.values())
        statuses = [account.status() for account in self.accounts()]
        report: dict[str, Any] = {"status": "ok" if ok else "fail", "service": "maildesk serve",
                                  "pid": os.getpid(), "ports": listener_ports(self.listeners())}
        if statuses:
            imap = Check(all(s.healthy for s in statuses), "; ".join(s.detail for s in statuses))
            checks["imap"] = imap
            if ok and not imap.ok:
                report["status"] = "degraded"
        report["checks"] = {name: asdict(check) for name, check in checks.items()}
        if statuses:
            report["imap"] = [_account_json(s) for s in statuses]
        return report

    async def database(self) -> Check:
        return await self._probe("database", self._select_one, "SELECT 1 answered")

    async def broker(self) -> Check:
        if not self.broker_url:
            return Check(True, "embedded")
        return await self._probe("broker", self._ping, "Redis PING answered")

    def listening(self) -> Check:
        listeners = list(self.listeners())
        if not listeners:
            return Check(True, "no listener configured")
        states = [(lst, lst.server.is_serving()) for lst in listeners]
        detail = ", ".join(f"{lst.name} {lst.where} {'serving' if up else 'NOT serving'}"
                           for lst, up in states)
        return Check(all(up for _, up in states), detail)

    def close(self) -> None:
        if self._redis is not None:
            with suppress(Exception):
                self._redis.close()

    async def _probe(self, name: str, fn: Callable[[], object], good: str) -> Check:
        try:
            await self.calls.run(f"health-{name}", fn, self.timeout)
        except TimeoutError:
            log.warning("health: %s gave no answer within %g s", name, self.timeout)
            return Check(False, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # noqa: BLE001 — any failure is a failed check
            log.warning("health: %s check failed: %s", name, exc)
            return Check(False, f"{type(exc).__name__} (details in the log)")
        return Check(True, good)

    def _select_one(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()

    def _ping(self) -> None:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.broker_url, socket_timeout=self.timeout,
                                               socket_connect_timeout=self.timeout)
        if not self._redis.ping():
            raise ConnectionError("PING not answered")


def listener_ports(listeners: Sequence[ListenerLike]) -> list[dict[str, Any]]:
    """[{"name": "smtp", "port": 2525}, ...] of the TCP listeners (a unix
    socket has no port)."""
    ports = []
    for listener in listeners:
        port = listener.where.rpartition(":")[2]
        if port.isdigit():
            ports.append({"name": listener.name, "port": int(port)})
    return ports


def _account_json(status: AccountStatus) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None

    return {"account": status.name, "state": status.state, "connected": status.connected,
            "lease": "held" if status.lease_held else "standby", "healthy": status.healthy,
            "polls": status.polls, "last_poll": when(status.last_poll),
            "last_error": status.last_error, "last_error_at": when(status.last_error_at)}
