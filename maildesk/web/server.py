"""The HTTP server of `maildesk serve`: /healthz, /metrics and the
customers' pages (web/pages.py).

aiohttp, because it runs on the same asyncio event loop as the aiosmtpd
listeners, the processor and the scheduler: one process, no second server
(no WSGI container, no thread per request), and the handlers can read the
daemon's live state (listeners, metrics) directly.

`start_web(daemon)` binds `[web] host`/`port` (0 = any free port) and
returns the `AppRunner`; the daemon stops it with `await runner.cleanup()`
once its listeners are closed. A port in use raises OSError, like the SMTP
listener, so `serve` fails at start instead of running half.

Every response the application makes (pages, JSON, 404, 405, 500) carries
the security headers (`on_response_prepare`, which also sees the HTTP
errors aiohttp raises itself); an exception in a handler is logged and
answered with a short 500 text, never a traceback. Only a request too
malformed to reach the application (aiohttp's own 400) goes without them.

Blocking work (the database, Redis) runs in daemon threads with a timeout,
one at a time per kind (`OffLoop`): a hung database can neither stall the
event loop and with it the SMTP listeners, nor pile up threads, nor keep
the process from exiting.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.engine import Engine

from maildesk.secret import load_secret
from maildesk.web.metrics import DaemonMetrics, query_database
from maildesk.web.pages import PAGES, Pages, add_customer_pages

if TYPE_CHECKING:
    from maildesk.daemon import Daemon
    from maildesk.ingest.imap import AccountStatus

log = logging.getLogger(__name__)

#: Longest a health probe (SELECT 1, Redis PING) may take.
CHECK_TIMEOUT = 2.0
#: Longest the database part of a scrape may take (then it is left out).
SCRAPE_DB_TIMEOUT = 5.0
#: On shutdown, how long requests in flight may still run.
SHUTDOWN_TIMEOUT = 5.0

CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

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
    """What the health check reads of an IMAP poller (ingest/imap.py)."""

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
        report: dict[str, Any] = {"status": "ok" if ok else "fail"}
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


def _account_json(status: AccountStatus) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None

    return {"account": status.name, "state": status.state, "connected": status.connected,
            "lease": "held" if status.lease_held else "standby", "healthy": status.healthy,
            "polls": status.polls, "last_poll": when(status.last_poll),
            "last_error": status.last_error, "last_error_at": when(status.last_error_at)}


# -- the application -----------------------------------------------------------------------------


@dataclass
class WebState:
    """What the handlers reach through `request.app[STATE]`."""

    engine: Engine
    metrics: DaemonMetrics
    health: Health
    calls: OffLoop


STATE = web.AppKey("maildesk", WebState)


@web.middleware
async def _errors(request: web.Request,
                  handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """HTTP errors (404, 405, …) pass as they are; anything else is logged
    and answered with a short 500 text."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # never a traceback to the client
        log.exception("web: %s %r failed (answered 500)", request.method, request.path)
        return web.Response(status=500, text="500 Internal Server Error\n")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Server"] = "maildesk"
    # Nothing here may be cached; a handler that serves something cacheable
    # (a stylesheet) sets its own Cache-Control.
    response.headers.setdefault("Cache-Control", "no-store")


async def healthz(request: web.Request) -> web.Response:
    report = await request.app[STATE].health.run()
    return web.json_response(report, status=503 if report["status"] == "fail" else 200)


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        snapshot = await state.calls.run("metrics-database", partial(query_database, state.engine),
                                         SCRAPE_DB_TIMEOUT)
    except TimeoutError:
        log.warning("metrics: database gave no answer within %g s; its gauges are left out",
                    SCRAPE_DB_TIMEOUT)
        snapshot = None
    except Exception as exc:  # noqa: BLE001 — counted, the scrape still answers
        log.warning("metrics: database gauges left out of this scrape: %s", exc)
        snapshot = None
    body = state.metrics.render(snapshot)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_ops_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


#: Each registers its routes on the application; customer pages add theirs.
ROUTES: list[Callable[[web.Application], None]] = [add_ops_routes]


def create_app(state: WebState, pages: Pages | None = None) -> web.Application:
    """The application; with `pages`, the customers' pages too."""
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
    app[STATE] = state
    app.on_response_prepare.append(_security_headers)
    if pages is not None:
        app[PAGES] = pages
        add_customer_pages(app)

    async def close(_app: web.Application) -> None:
        state.health.close()
        if pages is not None:
            pages.close()

    app.on_cleanup.append(close)
    for register in ROUTES:
        register(app)
    return app


def _format(address: Any) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


async def start_web(daemon: Daemon) -> web.AppRunner:
    """Serve the application on [web] host/port; stop with `runner.cleanup()`."""
    settings = daemon.settings.web
    calls = OffLoop()
    health = Health(daemon.engine, daemon.settings.broker.url, lambda: daemon.listeners, calls,
                    accounts=lambda: daemon.pollers)
    pages = Pages.create(daemon.settings, daemon.engine, load_secret(daemon.settings),
                         daemon.dispatch)
    app = create_app(WebState(daemon.engine, daemon.metrics, health, calls), pages)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"web server on {settings.host}:{settings.port} "
                                 f"(see [web] in the config): {exc.strerror or exc}") from exc
    where = ", ".join(_format(address) for address in runner.addresses)
    log.info("web server on http://%s (/healthz, /metrics, customer pages; links in mails "
             "start with %s)", where, settings.base_url)
    return runner
