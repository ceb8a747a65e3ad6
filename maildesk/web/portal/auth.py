"""The portal's login without a password, its sessions and logging out.

    GET  /portal/login            the form: an address (and the CSRF field)
    POST /portal/login            always the same answer page; for a known
                                  customer within the limits a login link is
                                  mailed (outbox kind portal_login)
    GET  /portal/login/<token>    a "log in" button only: mail scanners open
                                  links, so opening one consumes nothing
    POST /portal/login/<token>    uses the link once, starts a session
    POST /portal/logout           ends this session
    POST /portal/logout-everywhere   ends every session of the customer

(web/portal/routes.py lists every page of the portal.)

No account enumeration: whether the address is known, unknown or over a
limit, the answer is the same page with the same status, and it is given
no sooner than MIN_ANSWER_SECONDS after the request came in, so the few
writes for a known address do not show in the timing either.

The session cookie (`maildesk_portal`, Path=/portal/, HttpOnly,
SameSite=Lax, Secure when web.base_url is https) carries a random token;
the database keeps only its sha256 (store/portal.py). A login link proves
the address: an unconfirmed customer is confirmed by logging in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk import access
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.deliver import portal_login
from maildesk.models import utcnow
from maildesk.store import access as access_store
from maildesk.store import portal as store
from maildesk.web import csrf
from maildesk.web.pages import PAGES, _browser_language, _form
from maildesk.web.portal import login_rules as rules

log = logging.getLogger(__name__)

T = TypeVar("T")

COOKIE = "maildesk_portal"
COOKIE_PATH = "/portal/"
HOME = "/portal/"
LOGIN = "/portal/login"
LOGOUT = "/portal/logout"
LOGOUT_EVERYWHERE = "/portal/logout-everywhere"
#: The portal's navigation: its entries and where they lead (web/portal/routes.py).
NAV = {"requests": HOME, "new": "/portal/new", "help": "/portal/help",
       "profile": "/portal/profile"}
#: The login answer is never given sooner (the same timing for every address).
MIN_ANSWER_SECONDS = 0.25
#: A session's last_seen_at is written at most this often.
TOUCH = timedelta(minutes=5)
#: Clients whose recent requests are remembered in this process, at most.
MAX_CLIENTS = 10_000


@dataclass
class ClientLog:
    """The login requests per client address seen by this process (all of
    them, for unknown addresses too: those leave no row in the database)."""

    times: dict[str, deque[datetime]] = field(default_factory=dict)

    def seen(self, client: str, now: datetime) -> list[datetime]:
        """Record a request; the client's earlier requests of the last hour."""
        since = now - rules.WINDOW
        if client not in self.times and len(self.times) >= MAX_CLIENTS:
            for key in [k for k, v in self.times.items() if not v or v[-1] <= since]:
                del self.times[key]
            if len(self.times) >= MAX_CLIENTS:  # still full: forget the oldest client
                del self.times[next(iter(self.times))]
        entries = self.times.setdefault(client, deque())
        while entries and entries[0] <= since:
            entries.popleft()
        earlier = list(entries)
        entries.append(now)
        return earlier


CLIENTS = web.AppKey("maildesk-portal-clients", ClientLog)


# -- transactions ---------------------------------------------------------------------------


def _in_transaction(engine: Engine, fn: Callable[..., T], *args: Any) -> T:
    with session_scope(engine) as session:
        return fn(session, *args)


async def in_transaction(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """fn(session, *args) in one transaction, in the pages' thread pool."""
    pages = request.app[PAGES]
    return await pages.run(_in_transaction, pages.engine, fn, *args)


# -- rendering ------------------------------------------------------------------------------


def secure(settings: Settings) -> bool:
    return settings.web.base_url.startswith("https://")


def render(request: web.Request, name: str, language: str | None, status: int = 200,
           posts: tuple[str, ...] = (), **context: Any) -> web.Response:
    """A portal page; `posts`: other paths its forms post to, each gets its
    CSRF value in `csrf_for` (log out always: the navigation has it).
    `nav`: the navigation's entry this page is (requests, new, help, profile)."""
    pages = request.app[PAGES]
    response = web.Response(status=status, content_type="text/html", charset="utf-8")
    tokens = csrf.issue_for(request, response, pages.secret, secure(pages.settings),
                            (request.path, LOGOUT, *posts))
    response.text = pages.renderer.render(name, language, {
        "action": request.path, **context, "csrf_field": csrf.FIELD,
        "csrf_token": tokens[request.path], "csrf_for": tokens,
        "brand": pages.settings.notify.brand,
        "logout": LOGOUT, "logout_everywhere": LOGOUT_EVERYWHERE, "login": LOGIN,
        "nav_links": NAV, "nav": context.get("nav", ""),
    })
    return response


def forbidden(request: web.Request, language: str | None) -> web.Response:
    """A POST without its CSRF token, or from another site: nothing done.
    The page's "reload" link leads to a page with the form again."""
    log.warning("portal: POST %s refused: CSRF token missing or wrong", request.path)
    back = HOME if request.path in (LOGOUT, LOGOUT_EVERYWHERE) else request.path
    return render(request, "form_expired", language, 403, action=back)


def redirect(location: str) -> web.Response:
    """303 to `location`, as a response a cookie can be set on."""
    return web.Response(status=303, headers={"Location": location})


def client_of(request: web.Request) -> str:
    return rules.client_address(request.remote, request.headers.get("X-Forwarded-For"),
                                request.app[PAGES].settings.portal.trusted_proxies)


# -- the session ----------------------------------------------------------------------------


def session_hash(request: web.Request) -> str | None:
    """The hash of the session cookie's token; None without a plausible one."""
    token = request.cookies.get(COOKIE)
    return rules.hash_token(token) if token and rules.well_formed(token) else None


def live_customer(session: Session, token_hash: str, now: datetime) -> int | None:
    return store.session_customer(session, token_hash, now, now - TOUCH)


@dataclass(frozen=True)
class Current:
    """The logged-in customer, and the same customer as the access rule sees them."""

    customer: store.PortalCustomer
    viewer: access.Viewer


def current(session: Session, token_hash: str, now: datetime) -> Current | None:
    """The customer of a live session, for a page that reads or writes in
    the same transaction; None without one (answer: to the login)."""
    customer_id = live_customer(session, token_hash, now)
    if customer_id is None:
        return None
    customer = store.customer_by_id(session, customer_id)
    viewer = access_store.viewer_of(session, customer_id)
    if customer is None or viewer is None:
        return None
    return Current(customer, viewer)


def drop_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)


def to_login() -> web.Response:
    """The answer to a request whose session cookie names no live session:
    to the login form, the stale cookie dropped."""
    response = redirect(LOGIN)
    drop_cookie(response)
    return response


# -- asking for a link ----------------------------------------------------------------------


async def login_form(request: web.Request) -> web.StreamResponse:
    token_hash = session_hash(request)
    if token_hash is not None and await in_transaction(request, live_customer, token_hash,
                                                       utcnow()) is not None:
        return redirect(HOME)
    language = _browser_language(request)
    return render(request, "portal_login", language, sent=False, error=None, email="",
                  logged_out=request.query.get("out") == "1")


def request_link(session: Session, settings: Settings, secret: bytes, address: str,
                 client: str, client_seen: list[datetime], now: datetime) -> tuple[str, int | None]:
    """What came of a request: "sent" (and the outbox id), "unknown",
    "limited_client" or "limited_address"."""
    portal = settings.portal
    since = now - rules.WINDOW
    client_times = max(client_seen, store.login_times_of_client(session, client, since), key=len)
    customer = store.customer_by_email(session, address)
    address_times = (store.login_times_of_customer(session, customer.id, since)
                     if customer is not None else [])
    held = rules.may_send(address_times, client_times, now,
                          portal.login_requests_per_address_per_hour,
                          portal.login_requests_per_client_per_hour)
    if held is not None:
        return f"limited_{held}", None
    if customer is None:
        return "unknown", None
    nonce = rules.new_token()
    token_hash = rules.hash_token(portal_login.link_token(secret, nonce))
    outbox_id = store.add_login(
        session, customer, token_hash, nonce, client, now,
        rules.expires(now, minutes=portal.login_minutes), portal.login_minutes,
        settings.message_id_domain)
    log.info("portal: login link for customer %d queued (outbox %d, client %s)",
             customer.id, outbox_id, client)
    return "sent", outbox_id


async def login_submit(request: web.Request) -> web.StreamResponse:
    started = time.monotonic()
    pages = request.app[PAGES]
    fields, ok = await _form(request)
    language = _browser_language(request)
    if not ok:
        return forbidden(request, language)
    address = rules.clean_address(fields.get("email"))
    if address is None:
        return render(request, "portal_login", language, 400, sent=False, error="address",
                      email=(fields.get("email") or "")[:rules.MAX_ADDRESS], logged_out=False)
    now = utcnow()
    client = client_of(request)
    seen = request.app[CLIENTS].seen(client, now)
    outcome, outbox_id = await in_transaction(request, request_link, pages.settings,
                                              pages.secret, address, client, seen, now)
    if outcome.startswith("limited"):
        log.warning("portal: login link request refused (%s, client %s): nothing sent",
                    outcome.removeprefix("limited_") + " limit", client)
    if outbox_id is not None:
        pages.dispatch([outbox_id])
    await asyncio.sleep(max(0.0, MIN_ANSWER_SECONDS - (time.monotonic() - started)))
    return render(request, "portal_login", language, sent=True, error=None, email="",
                  logged_out=False)


# -- following the link ---------------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    state: str  # valid / used / expired / unknown
    customer: store.PortalCustomer | None = None
    confirmed_now: bool = False


def link_state(session: Session, token_hash: str, now: datetime) -> LinkState:
    login = store.login_of(session, token_hash)
    if login is None:
        return LinkState("unknown")
    state = rules.login_state(login.expires_at, login.used_at, now)
    return LinkState(state, store.customer_by_id(session, login.customer_id))


def use_link(session: Session, token_hash: str, session_token_hash: str, now: datetime,
             session_days: float, previous: str | None = None) -> LinkState:
    """Use the link once: confirm the address, start the session (and end
    the browser's `previous` one: a browser has one session at a time)."""
    found = link_state(session, token_hash, now)
    login = store.login_of(session, token_hash)
    if found.state != "valid" or found.customer is None or login is None:
        return found
    if not store.use_login(session, login.id, now):  # the other click was first
        return LinkState("used", found.customer)
    if previous is not None:
        store.revoke_session(session, previous, now)
    confirmed_now = store.confirm_customer(session, found.customer.id, now)
    store.add_session(session, found.customer.id, session_token_hash, now,
                      rules.expires(now, days=session_days))
    return LinkState("valid", found.customer, confirmed_now)


def _token_hash(request: web.Request) -> str | None:
    token = request.match_info["token"]
    return rules.hash_token(token) if rules.well_formed(token) else None


def _link_refused(request: web.Request, found: LinkState) -> web.Response:
    status = 404 if found.state == "unknown" else 410
    log.info("portal: login link refused (%s)", found.state)
    language = found.customer.language if found.customer else _browser_language(request)
    return render(request, "portal_link_error", language, status, reason=found.state)


async def link_form(request: web.Request) -> web.Response:
    """GET: the button only. Consumes nothing, whoever opens it."""
    token_hash = _token_hash(request)
    found = (await in_transaction(request, link_state, token_hash, utcnow())
             if token_hash else LinkState("unknown"))
    if found.state != "valid" or found.customer is None:
        return _link_refused(request, found)
    return render(request, "portal_link", found.customer.language, customer=found.customer)


async def link_submit(request: web.Request) -> web.StreamResponse:
    pages = request.app[PAGES]
    token_hash = _token_hash(request)
    if token_hash is None:
        return _link_refused(request, LinkState("unknown"))
    _, ok = await _form(request)
    if not ok:
        return forbidden(request, _browser_language(request))
    session_token = rules.new_token()
    found = await in_transaction(request, use_link, token_hash,
                                 rules.hash_token(session_token), utcnow(),
                                 pages.settings.portal.session_days, session_hash(request))
    if found.state != "valid" or found.customer is None:
        return _link_refused(request, found)
    log.info("portal: customer %d logged in%s", found.customer.id,
             " (address confirmed by the link)" if found.confirmed_now else "")
    response = redirect(HOME + ("?confirmed=1" if found.confirmed_now else ""))
    response.set_cookie(COOKIE, session_token, path=COOKIE_PATH, httponly=True,
                        samesite="Lax", secure=secure(pages.settings),
                        max_age=int(pages.settings.portal.session_days * 86_400))
    return response


# -- logging out ----------------------------------------------------------------------------


def _logout(session: Session, token_hash: str, everywhere: bool, now: datetime) -> int | None:
    customer_id = live_customer(session, token_hash, now)
    if customer_id is None:
        return None
    if everywhere:
        store.revoke_all(session, customer_id, now)
    else:
        store.revoke_session(session, token_hash, now)
    return customer_id


async def _logout_submit(request: web.Request, everywhere: bool) -> web.StreamResponse:
    _, ok = await _form(request)
    if not ok:
        return forbidden(request, _browser_language(request))
    token_hash = session_hash(request)
    customer_id = (await in_transaction(request, _logout, token_hash, everywhere, utcnow())
                   if token_hash else None)
    if customer_id is not None:
        log.info("portal: customer %d logged out%s", customer_id,
                 " everywhere" if everywhere else "")
    response = redirect(LOGIN + "?out=1")
    drop_cookie(response)
    return response


async def logout_submit(request: web.Request) -> web.StreamResponse:
    return await _logout_submit(request, everywhere=False)


async def logout_everywhere_submit(request: web.Request) -> web.StreamResponse:
    return await _logout_submit(request, everywhere=True)
