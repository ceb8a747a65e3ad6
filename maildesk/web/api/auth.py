"""Bearer tokens for the API, and a brake on guessing them.

Every route but the OpenAPI document needs `Authorization: Bearer <token>`
(actions/tokens.py). A failed attempt — no header, a malformed or unknown
or revoked token — is logged with the client's address and the reason,
never the token, and counted per client address: after FAILURES_ALLOWED
failures within FAILURE_WINDOW seconds that address gets 429 with
Retry-After, without a database query, until the window has passed.

A token found good is remembered for TOKEN_CACHE_SECONDS, so a client's
burst of calls costs one query, not one each (a third of the API's own
time per call on SQLite; bench/api.py). A revoked token therefore stops
working within that second, on every instance alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine

from maildesk.actions.tokens import Caller, authenticate, digest
from maildesk.config import Settings
from maildesk.web.api.problems import Problem

log = logging.getLogger(__name__)

FAILURES_ALLOWED = 10
FAILURE_WINDOW = 60.0
#: How long a token found good is believed without asking the database.
TOKEN_CACHE_SECONDS = 1.0
#: Routes anyone may read.
PUBLIC = frozenset({"/api/v1/openapi.json"})


@dataclass
class FailureLimiter:
    """Failed authentications per client address, in a sliding window."""

    allowed: int = FAILURES_ALLOWED
    window: float = FAILURE_WINDOW
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked_for(self, client: str) -> float:
        """Seconds until `client` may try again (0: now)."""
        times = self._recent(client)
        if len(times) < self.allowed:
            return 0.0
        return max(0.0, times[0] + self.window - self.clock())

    def failed(self, client: str) -> None:
        self._recent(client).append(self.clock())
        if len(self._failures) > 10_000:  # a flood of addresses: forget the oldest
            self._failures.pop(next(iter(self._failures)))

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times


@dataclass
class TokenCache:
    """Tokens found good lately, by their digest (never the token itself)."""

    ttl: float = TOKEN_CACHE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _good: dict[str, tuple[float, Caller]] = field(default_factory=dict)

    def get(self, token: str) -> Caller | None:
        found = self._good.get(digest(token))
        if found is None or found[0] <= self.clock():
            return None
        return found[1]

    def put(self, token: str, caller: Caller) -> None:
        if len(self._good) > 10_000:
            self._good.clear()
        self._good[digest(token)] = (self.clock() + self.ttl, caller)


@dataclass
class ApiState:
    """What the API's handlers reach through `request.app[API]`."""

    settings: Settings
    engine: Engine
    #: Committed outbox ids onto the broker (the daemon's dispatch).
    dispatch: Callable[[list[int]], None] = lambda ids: None
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    tokens: TokenCache = field(default_factory=TokenCache)


API = web.AppKey("maildesk-api", ApiState)
#: Where the request keeps its caller (a typed key where aiohttp has them).
CALLER: Any = (web.RequestKey("maildesk-caller", Caller) if hasattr(web, "RequestKey")
               else "maildesk.caller")


def caller(request: web.Request) -> Caller:
    return request[CALLER]


def require_admin(request: web.Request) -> Caller:
    who = caller(request)
    if not who.admin:
        raise Problem(403, "admin-scope-required",
                      "this needs a token with scope admin (maildesk tokens create --scope admin)")
    return who


@web.middleware
async def auth_middleware(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                          ) -> web.StreamResponse:
    if not request.path.startswith("/api/") or request.path in PUBLIC:
        return await handler(request)
    state = request.app[API]
    client = request.remote or "unknown"
    wait = state.limiter.blocked_for(client)
    if wait > 0:
        raise _with_retry(wait)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = None
    reason = "no bearer token"
    if scheme.lower() == "bearer" and token.strip():
        token = token.strip()
        found = state.tokens.get(token)
        if found is None:
            found = await asyncio.to_thread(authenticate, state.engine, state.settings, token)
            if found is not None:
                state.tokens.put(token, found)
        reason = "unknown, revoked or malformed token"
    if found is None:
        state.limiter.failed(client)
        log.warning("api: authentication failed from %s for %s %s: %s", client,
                    request.method, request.path, reason)
        problem = Problem(401, "unauthorized",
                          "send 'Authorization: Bearer <token>' with a valid API token")
        problem.headers["WWW-Authenticate"] = 'Bearer realm="maildesk"'
        raise problem
    request[CALLER] = found
    return await handler(request)


def _with_retry(wait: float) -> Problem:
    problem = Problem(429, "too-many-failed-logins",
                      "too many failed authentications from this address; try again later")
    problem.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    return problem
