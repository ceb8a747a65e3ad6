"""CSRF protection for the customers' forms: a double-submit cookie.

Every page with a form sets (or keeps) a random cookie and puts an HMAC of
it and the page's path into a hidden field. A POST is taken only when the
field matches the cookie it came with, and, when the browser names an
Origin, that origin is ours. Another site can make a browser POST to us, but
it can neither read our cookie nor, with SameSite=Lax, make the browser
send it along: its forged form has no valid token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web

COOKIE = "maildesk_csrf"
FIELD = "csrf"


def _sign(secret: bytes, cookie: str, path: str) -> str:
    digest = hmac.new(secret, f"csrf:{cookie}:{path}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(request: web.Request, response: web.StreamResponse, secret: bytes,
          secure: bool) -> str:
    """The hidden field's value for a form on this page; sets the cookie on
    `response` when the browser has none yet."""
    return issue_for(request, response, secret, secure, (request.path,))[request.path]


def issue_for(request: web.Request, response: web.StreamResponse, secret: bytes,
              secure: bool, paths: tuple[str, ...]) -> dict[str, str]:
    """The hidden fields' values for forms that post to each of `paths`
    (a page with a "log out" button posts elsewhere); one cookie for all."""
    cookie = request.cookies.get(COOKIE, "")
    if len(cookie) < 32:
        cookie = secrets.token_urlsafe(32)
        response.set_cookie(COOKIE, cookie, path="/", httponly=True, samesite="Lax",
                            secure=secure, max_age=7 * 86_400)
    return {path: _sign(secret, cookie, path) for path in paths}


def valid(request: web.Request, submitted: str | None, secret: bytes,
          own_origins: frozenset[str]) -> bool:
    """True when the POST carries the token of its own cookie and path and
    does not come from a foreign origin."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.lower() not in own_origins:
        return False
    cookie = request.cookies.get(COOKIE, "")
    if len(cookie) < 32 or not submitted:
        return False
    return hmac.compare_digest(_sign(secret, cookie, request.path), submitted)


def origins(base_url: str, request: web.Request) -> frozenset[str]:
    """The configured public origin and the one the request was made to."""
    parts = urlsplit(base_url)
    found = {f"{parts.scheme}://{parts.netloc}".lower()}
    found.add(f"{request.scheme}://{request.host}".lower())
    return frozenset(found)
