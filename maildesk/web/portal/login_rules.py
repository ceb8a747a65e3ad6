"""The pure rules of the portal's login: tokens and their hashes, expiry,
and the login-link request limits. No I/O.

A token is only ever stored as its sha256 (`token_hash`): whoever reads
the database cannot log in with what they find. The mailed login link's
token is not stored at all, not even in the outbox row: the row keeps a
random nonce and the worker derives the token from it with the secret
(deliver/portal_login.py), so the database alone gives no link.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

#: A token as we make them (token_urlsafe(32): 43 characters).
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
#: A rough check of an address typed into the login form.
_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
MAX_ADDRESS = 320
WINDOW = timedelta(hours=1)


def new_token() -> str:
    """A random session token or login nonce (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the database keeps of a token: hex sha256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def well_formed(token: str | None) -> bool:
    """A token that could be ours; anything else is refused without a lookup."""
    return bool(token) and bool(_TOKEN.match(token or ""))


def clean_address(value: str | None) -> str | None:
    """The address typed in, lower-cased, or None when it is none."""
    address = (value or "").strip().lower()
    if not address or len(address) > MAX_ADDRESS or not _ADDRESS.match(address):
        return None
    return address


def expires(now: datetime, *, minutes: float = 0, days: float = 0) -> datetime:
    return now + timedelta(minutes=minutes, days=days)


def login_state(expires_at: datetime | None, used_at: datetime | None,
                now: datetime) -> str:
    """"valid", "used", "expired" or "unknown" (no such link) for a login link."""
    if expires_at is None:
        return "unknown"
    if used_at is not None:
        return "used"
    if now >= expires_at:
        return "expired"
    return "valid"


def session_alive(expires_at: datetime, revoked_at: datetime | None, now: datetime) -> bool:
    return revoked_at is None and now < expires_at


def over_limit(times: Iterable[datetime], now: datetime, limit: int,
               window: timedelta = WINDOW) -> bool:
    """True when `limit` requests or more fall in the window before `now`:
    the next one is refused."""
    since = now - window
    return sum(1 for t in times if since < t <= now) >= limit


def may_send(address_times: Iterable[datetime], client_times: Iterable[datetime],
             now: datetime, per_address: int, per_client: int) -> str | None:
    """None when a login link may be sent; otherwise which limit holds it."""
    if over_limit(client_times, now, per_client):
        return "client"
    if over_limit(address_times, now, per_address):
        return "address"
    return None


def client_address(remote: str | None, forwarded_for: str | None,
                   trusted_proxies: tuple[str, ...]) -> str:
    """The client the per-client login limit counts. Behind a reverse
    proxy every request comes from the proxy: its X-Forwarded-For names
    the client, but only a proxy ops trust ([portal] trusted_proxies) may
    say so — anyone else could send the header to dodge the limit. The
    nearest address in the header that is no trusted proxy is the client."""
    client = remote or "unknown"
    if client in trusted_proxies and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            client = hop
            if hop not in trusted_proxies:
                break
    return client[:64]
