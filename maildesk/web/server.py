"""The HTTP server of `maildesk serve`: /healthz, /metrics and the
customers' pages (web/pages.py).

aiohttp, because it runs on the same asyncio event loop as the aiosmtpd
listeners, the processor and the scheduler: one process, no second server
(no WSGI container, no thread per request), and the handlers can read the
daemon's live state (listeners, metrics) directly.

`start_web(...)` binds `[web] host`/`port` (0 = any free port) and
returns the `AppRunner`; the daemon stops it with `await runner.cleanup()`
once its listeners are closed. A port in use raises OSError, like the SMTP
listener, so `serve` fails at start instead of running half.

Every response the application makes (pages, JSON, 404, 405, 500) carries
the security headers (`on_response_prepare`, which also sees the HTTP
errors aiohttp raises itself); an exception in a handler is logged and
answered with a short 500 text, never a traceback. Only a request too
malformed to reach the application (aiohttp's own 400) goes without them.

/healthz's checks live in web/health.py; the server is handed what they
read (listeners, IMAP pollers) as callables, never the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.secret import load_secret
from maildesk.web.api import add_api_routes
from maildesk.web.api.auth import ApiState
from maildesk.web.health import AccountLike, Health, ListenerLike, OffLoop
from maildesk.web.metrics import DaemonMetrics, query_database
from maildesk.web.pages import PAGES, Pages, add_customer_pages
from maildesk.web.participant_removal import add_removal_pages
from maildesk.web.portal import add_portal_pages
from maildesk.web.unsubscribe import add_unsubscribe_pages

log = logging.getLogger(__name__)

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
    for name, value in SECURITY_HEADERS.items():  # a file download brings a stricter CSP
        response.headers.setdefault(name, value)
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


def create_app(state: WebState, pages: Pages | None = None,
               api: ApiState | None = None) -> web.Application:
    """The application; with `pages`, the customers' pages too; with `api`,
    the HTTP API under /api/v1/."""
    # 1 MiB: the API's largest JSON (a 100,000-character text) fits; a
    # bigger body is refused with 413 before it is read into memory.
    app = web.Application(middlewares=[_errors], client_max_size=1024 * 1024)
    app[STATE] = state
    if api is not None:
        add_api_routes(app, api)
    app.on_response_prepare.append(_security_headers)
    if pages is not None:
        app[PAGES] = pages
        add_customer_pages(app)
        add_unsubscribe_pages(app)  # announcements (web/unsubscribe.py)
        add_removal_pages(app)  # a CC or follower stops a ticket's mails
        add_portal_pages(app)  # the customers' portal under /portal/ ([portal] enabled)

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


async def start_web(settings: Settings, engine: Engine, metrics: DaemonMetrics,
                    dispatch: Callable[[list[int]], None],
                    listeners: Callable[[], Sequence[ListenerLike]] = list,
                    accounts: Callable[[], Sequence[AccountLike]] = list) -> web.AppRunner:
    """Serve the application on [web] host/port; stop with `runner.cleanup()`.

    `dispatch` hands the outbox ids a page's action committed to the
    broker; `listeners` and `accounts` are read by /healthz."""
    web_settings = settings.web
    calls = OffLoop()
    health = Health(engine, settings.broker.url, listeners, calls, accounts=accounts)
    pages = Pages.create(settings, engine, load_secret(settings), dispatch)
    api = ApiState(settings, engine, dispatch)
    app = create_app(WebState(engine, metrics, health, calls), pages, api)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, web_settings.host, web_settings.port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"web server on {web_settings.host}:{web_settings.port} "
                                 f"(see [web] in the config): {exc.strerror or exc}") from exc
    where = ", ".join(_format(address) for address in runner.addresses)
    log.info("web server on http://%s (/healthz, /metrics, customer pages; links in mails "
             "start with %s)", where, web_settings.base_url)
    return runner
