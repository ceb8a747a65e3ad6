"""OAuth2 access tokens for IMAP accounts with auth = "xoauth2" / "oauthbearer".

Microsoft 365 and Google take no passwords over IMAP: the poller logs in
with an access token from the account's token endpoint ([imap.oauth2]),
either by the client-credentials grant (Microsoft 365 app-only access) or
by the refresh-token grant (delegated access, Google and Microsoft 365).

A token is asked for only when none is at hand or the one at hand is due
for renewal (`needs_refresh`: well before it expires, so a login never
presents a token in its last seconds). Tokens are cached in memory and in
the database (table oauth2_token, through a TokenCache the caller hands
in: accept/imap.py's opens the transactions), so restarts and the other
instances reuse one token instead of each asking the endpoint. A refresh
token the server rotates to is kept there too and used next time.

What is stored is sealed with a key derived from the account's own
credentials (the client secret, the configured refresh token, client id,
scope, user): the row alone opens no mailbox, and a changed secret simply
makes the old row unreadable, so a fresh token is asked for. The seal is
HMAC-SHA256 in counter mode with an HMAC-SHA256 tag (encrypt-then-MAC),
from the standard library: maildesk has no crypto dependency.

Secrets and tokens are never logged and never put into an exception's
text; the endpoint's own error text is scrubbed of them as well, since a
misconfigured proxy might echo a request back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import aiohttp

from maildesk.config import ImapAccountSettings, OAuth2Settings
from maildesk.errors import TemporaryError
from maildesk.models import utcnow
from maildesk.store.oauth2_tokens import StoredToken

log = logging.getLogger(__name__)

#: A token without expires_in is taken to live this long (RFC 6749 makes
#: the field optional; both Microsoft and Google send it).
DEFAULT_LIFETIME_SECONDS = 3600
#: A token is renewed this long before it expires, or at half its lifetime
#: when that is shorter (a 3-second test token is renewed after 1.5 s).
RENEW_BEFORE_SECONDS = 300
#: Never sooner than this after it was got: a server that issues tokens
#: living 0 s must not make the poller ask in a tight loop.
MIN_TOKEN_SECONDS = 1.0
#: How much of the endpoint's error description goes into a message.
DESCRIPTION_CHARS = 300


class TokenError(TemporaryError):
    """The token endpoint could not be reached or answered something unusable."""


class TokenRefused(TokenError):
    """The endpoint refused the grant, or a secret cannot be read: the
    config has to change; retrying (with backoff) only finds out when it did.
    `error` is the endpoint's RFC 6749 error code ("" for a secret)."""

    def __init__(self, text: str, error: str = "") -> None:
        super().__init__(text)
        self.error = error


# ----------------------------------------------------------- pure decisions


@dataclass(frozen=True)
class AccessToken:
    """A token to log in with. `cached`: taken from memory or the database
    rather than just got from the endpoint (a refused cached token is worth
    one retry with a fresh one)."""

    value: str = field(repr=False)
    expires_at: datetime
    refresh_at: datetime
    cached: bool = False


@dataclass(frozen=True)
class TokenAnswer:
    """What a successful token response said."""

    access_token: str = field(repr=False)
    lifetime_seconds: float
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Credentials:
    """The account's secrets, read at run time (file, environment or config)."""

    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_secret, self.refresh_token) if s)


def refresh_time(obtained_at: datetime, lifetime_seconds: float) -> datetime:
    """When a token got at `obtained_at` and living `lifetime_seconds` is due
    for renewal: RENEW_BEFORE_SECONDS before it expires, or at half its
    lifetime if that comes later; never before MIN_TOKEN_SECONDS."""
    lifetime = max(0.0, lifetime_seconds)
    due = max(lifetime - RENEW_BEFORE_SECONDS, lifetime / 2, MIN_TOKEN_SECONDS)
    return obtained_at + timedelta(seconds=due)


def needs_refresh(refresh_at: datetime | None, expires_at: datetime | None,
                  now: datetime) -> bool:
    """Whether a token (None: there is none) must be renewed before use."""
    if refresh_at is None or expires_at is None:
        return True
    return now >= refresh_at or now >= expires_at


def token_form(settings: OAuth2Settings, credentials: Credentials,
               refresh_token: str | None = None) -> dict[str, str]:
    """The form-encoded body of the token request (RFC 6749 §4.4 / §6; the
    client authenticates with client_secret in the body, which Microsoft
    and Google both take)."""
    form = {"grant_type": settings.grant_type, "client_id": settings.client_id.strip()}
    if settings.grant_type == "refresh_token":
        form["refresh_token"] = refresh_token or credentials.refresh_token
    if credentials.client_secret:
        form["client_secret"] = credentials.client_secret
    if settings.scope.strip():
        form["scope"] = " ".join(settings.scope.split())
    return form


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret (and its form-encoded spelling) replaced by ***."""
    from urllib.parse import quote_plus

    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***").replace(quote_plus(secret), "***")
    return text


#: What to fix for an endpoint's RFC 6749 §5.2 error code.
HINTS: Mapping[str, str] = {
    "invalid_client": "check client_id and the client secret (client_secret, "
                      "client_secret_file or client_secret_env; Microsoft 365 wants the "
                      "secret's value, not its ID)",
    "unauthorized_client": "the app may not use this grant: check the app registration "
                           "(Microsoft 365 app-only access: application permission "
                           "IMAP.AccessAsApp with admin consent)",
    "invalid_grant": "the refresh token is invalid, expired or revoked: get a new one by "
                     "the consent flow and set refresh_token_file (or refresh_token_env)",
    "invalid_scope": "check scope (Microsoft 365 app-only: "
                     "https://outlook.office365.com/.default; Google: https://mail.google.com/)",
    "invalid_request": "check token_url, client_id and scope",
    "unsupported_grant_type": "the endpoint does not offer this grant: check grant and token_url",
}


def refusal_text(url: str, grant: str, status: int, error: str, description: str,
                 secrets: tuple[str, ...]) -> str:
    """The one-line reason for a refused grant: the endpoint's error and
    description (scrubbed, shortened) and what to fix."""
    description = " ".join(description.split())
    if len(description) > DESCRIPTION_CHARS:
        description = description[:DESCRIPTION_CHARS] + "…"
    said = f"{error}: {description}" if description else error
    hint = HINTS.get(error, "check the [imap.oauth2] settings")
    return scrub(f"the token endpoint {url} refused the {grant} grant (HTTP {status}): "
                 f"{said}; {hint}", secrets)


def parse_token_answer(status: int, body: bytes, *, url: str, grant: str,
                       secrets: tuple[str, ...]) -> TokenAnswer:
    """A token response (RFC 6749 §5.1), or TokenRefused (§5.2: a 4xx with
    an error code) / TokenError (anything else unusable, a 5xx, a 429)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise TokenError(f"the token endpoint {url} answered HTTP {status} without a JSON "
                         f"object (is token_url right?)")
    error = data.get("error")
    if status != 200 or error:
        if isinstance(error, str) and 400 <= status < 500 and status != 429:
            raise TokenRefused(refusal_text(url, grant, status, error,
                                            str(data.get("error_description") or ""), secrets),
                               error)
        raise TokenError(scrub(f"the token endpoint {url} answered HTTP {status}"
                               + (f" ({error})" if isinstance(error, str) else ""), secrets))
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError(f"the token endpoint {url} answered without an access_token")
    kind = data.get("token_type", "Bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise TokenError(f"the token endpoint {url} issued a {kind!r} token, not a Bearer token")
    try:
        lifetime = float(data.get("expires_in", DEFAULT_LIFETIME_SECONDS))
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_SECONDS
    rotated = data.get("refresh_token")
    return TokenAnswer(token, lifetime, rotated if isinstance(rotated, str) and rotated else None)


# ---------------------------------------------------------------- sealing


def cache_key(account: ImapAccountSettings, credentials: Credentials) -> bytes:
    """The key that seals the account's cached tokens, from what only the
    holder of its config has (HKDF-extract style: HMAC over the secrets)."""
    assert account.oauth2 is not None
    settings = account.oauth2
    material = "\0".join((settings.token_url, settings.client_id.strip(), settings.grant_type,
                          " ".join(settings.scope.split()), account.user,
                          credentials.client_secret, credentials.refresh_token))
    return hmac.new(b"maildesk oauth2 token cache v1", material.encode(), hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A name for the key (not the key): a row sealed with another one is stale."""
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:32]


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
              for i in range((length + 31) // 32))
    return b"".join(blocks)[:length]


def _tag(key: bytes, nonce: bytes, context: str, ciphertext: bytes) -> bytes:
    label = context.encode()
    return hmac.new(key, b"v1" + nonce + len(label).to_bytes(2, "big") + label + ciphertext,
                    hashlib.sha256).digest()


def seal(key: bytes, plaintext: str, context: str, nonce: bytes | None = None) -> str:
    """`plaintext` encrypted and authenticated for `context` (e.g. the
    account and which token): "v1." + base64(nonce, ciphertext, tag)."""
    nonce = nonce if nonce is not None else os.urandom(16)
    enc = hmac.new(key, b"encrypt", hashlib.sha256).digest()
    mac = hmac.new(key, b"authenticate", hashlib.sha256).digest()
    data = plaintext.encode()
    ciphertext = bytes(a ^ b for a, b in zip(data, _stream(enc, nonce, len(data)), strict=True))
    sealed = nonce + ciphertext + _tag(mac, nonce, context, ciphertext)
    return "v1." + base64.urlsafe_b64encode(sealed).decode("ascii")


def unseal(key: bytes, sealed: str | None, context: str) -> str | None:
    """The plaintext, or None when `sealed` is missing, damaged, sealed
    with another key or for another context."""
    if not sealed or not sealed.startswith("v1."):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed[3:].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) < 16 + 32:
        return None
    nonce, ciphertext, tag = raw[:16], raw[16:-32], raw[-32:]
    mac = hmac.new(key, b"authenticate", hashlib.sha256).digest()
    if not hmac.compare_digest(tag, _tag(mac, nonce, context, ciphertext)):
        return None
    enc = hmac.new(key, b"encrypt", hashlib.sha256).digest()
    data = bytes(a ^ b for a, b in zip(ciphertext, _stream(enc, nonce, len(ciphertext)),
                                       strict=True))
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------ edges


def read_secret(settings: OAuth2Settings, name: str, environ: Mapping[str, str]) -> str:
    """The secret `name` ("client_secret" / "refresh_token") from its file,
    its environment variable or the config; "" when none is set."""
    path = getattr(settings, f"{name}_file")
    variable = getattr(settings, f"{name}_env")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenRefused(f"cannot read {name}_file {path}: "
                               f"{exc.strerror or type(exc).__name__}") from None
        if not value:
            raise TokenRefused(f"{name}_file {path} is empty")
        return value
    if variable:
        value = environ.get(variable, "").strip()
        if not value:
            raise TokenRefused(f"the environment variable {variable} ({name}_env) is not set "
                               f"or empty in maildesk's environment")
        return value
    return str(getattr(settings, name)).strip()


def read_credentials(settings: OAuth2Settings, environ: Mapping[str, str]) -> Credentials:
    return Credentials(read_secret(settings, "client_secret", environ),
                       read_secret(settings, "refresh_token", environ))


#: POST url, form, timeout -> (HTTP status, body). Replaceable in tests.
Post = Callable[[str, Mapping[str, str], float], Awaitable[tuple[int, bytes]]]


async def post_form(url: str, form: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    """One form-encoded POST. aiohttp's exceptions name the URL, never the body."""
    async with aiohttp.request("POST", url, data=dict(form),
                               headers={"Accept": "application/json"},
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        return response.status, await response.read()


class TokenCache(Protocol):
    """Where sealed tokens outlive the process (accept/imap.py: the database)."""

    async def load(self, account: str) -> StoredToken | None: ...

    async def save(self, account: str, token: StoredToken) -> None: ...

    async def forget(self, account: str, access_token: str) -> None: ...


class MemoryTokenCache:
    """A TokenCache of one process (for `check` without a database, and tests)."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredToken] = {}

    async def load(self, account: str) -> StoredToken | None:
        return self.rows.get(account)

    async def save(self, account: str, token: StoredToken) -> None:
        self.rows[account] = token

    async def forget(self, account: str, access_token: str) -> None:
        row = self.rows.get(account)
        if row is not None and row.access_token == access_token:
            self.rows[account] = StoredToken(row.key_id, None, None, None, row.refresh_token)


class TokenSource:
    """One account's access tokens: memory, then the cache, then the endpoint.

    `requests` counts the token requests made (for `check` and the tests:
    a restart with a valid cached token makes none).
    """

    def __init__(self, account: ImapAccountSettings, cache: TokenCache | None = None, *,
                 environ: Mapping[str, str] | None = None,
                 clock: Callable[[], datetime] = utcnow, post: Post = post_form) -> None:
        if account.oauth2 is None:
            raise ValueError(f"account {account.name!r} has no [imap.oauth2] settings")
        self.account = account
        self.settings: OAuth2Settings = account.oauth2
        self.cache = cache or MemoryTokenCache()
        self.environ = os.environ if environ is None else environ
        self.clock = clock
        self.post = post
        self.requests = 0
        self._token: AccessToken | None = None
        self._sealed: str | None = None
        self._lock = asyncio.Lock()

    @property
    def grant(self) -> str:
        return self.settings.grant_type

    async def get(self, force: bool = False) -> AccessToken:
        """A token to log in with; `force`: a fresh one from the endpoint."""
        async with self._lock:
            now = self.clock()
            token = self._token
            if (not force and token is not None
                    and not needs_refresh(token.refresh_at, token.expires_at, now)):
                return AccessToken(token.value, token.expires_at, token.refresh_at, cached=True)
            credentials = read_credentials(self.settings, self.environ)
            key = cache_key(self.account, credentials)
            stored = await self._load()
            rotated = None
            if stored is not None and stored.key_id == key_id(key):
                rotated = unseal(key, stored.refresh_token, self._context("refresh"))
                value = unseal(key, stored.access_token, self._context("access"))
                if (not force and value is not None
                        and not needs_refresh(stored.refresh_at, stored.expires_at, now)):
                    assert stored.expires_at is not None and stored.refresh_at is not None
                    self._token = AccessToken(value, stored.expires_at, stored.refresh_at)
                    self._sealed = stored.access_token
                    log.debug("IMAP account %r: using the cached access token (valid until "
                              "%s)", self.account.name, stored.expires_at)
                    return AccessToken(value, stored.expires_at, stored.refresh_at, cached=True)
            answer, refresh = await self._ask(credentials, rotated)
            obtained = self.clock()
            expires = obtained + timedelta(seconds=max(0.0, answer.lifetime_seconds))
            fresh = AccessToken(answer.access_token, expires,
                                refresh_time(obtained, answer.lifetime_seconds))
            keep = answer.refresh_token or refresh
            sealed = seal(key, fresh.value, self._context("access"))
            row = StoredToken(
                key_id(key), sealed, fresh.expires_at, fresh.refresh_at,
                seal(key, keep, self._context("refresh"))
                if keep and keep != credentials.refresh_token else None)
            self._token, self._sealed = fresh, sealed
            await self._save(row)
            log.info("IMAP account %r: got an access token from %s (%s grant, valid %.0f s%s)",
                     self.account.name, self.settings.token_url, self.grant,
                     answer.lifetime_seconds,
                     ", refresh token rotated" if answer.refresh_token
                     and answer.refresh_token != refresh else "")
            return fresh

    async def refused(self, token: AccessToken) -> None:
        """The server refused `token`: forget it here and in the cache (if it
        is still the stored one), so the next get() asks the endpoint."""
        if self._token is not None and self._token.value == token.value:
            sealed, self._token, self._sealed = self._sealed, None, None
            if sealed:
                try:
                    await self.cache.forget(self.account.name, sealed)
                except Exception as exc:  # noqa: BLE001 — the cache is an optimisation
                    log.warning("IMAP account %r: cannot drop the refused token from the "
                                "cache: %s", self.account.name, type(exc).__name__)

    async def _ask(self, credentials: Credentials,
                   rotated: str | None) -> tuple[TokenAnswer, str | None]:
        """The token request; a stored rotated refresh token the endpoint
        calls invalid_grant is given up once for the configured one."""
        refresh = rotated or credentials.refresh_token or None
        try:
            return await self._request(credentials, refresh), refresh
        except TokenRefused as exc:
            if not (rotated and credentials.refresh_token and exc.error == "invalid_grant"):
                raise
            log.warning("IMAP account %r: the stored (rotated) refresh token was refused; "
                        "trying the configured one", self.account.name)
            return (await self._request(credentials, credentials.refresh_token),
                    credentials.refresh_token)

    async def _request(self, credentials: Credentials, refresh: str | None) -> TokenAnswer:
        url = self.settings.token_url
        secrets = credentials.secrets + ((refresh,) if refresh else ())
        self.requests += 1
        try:
            status, body = await self.post(url, token_form(self.settings, credentials, refresh),
                                           self.settings.timeout_seconds)
        except TimeoutError:
            raise TokenError(f"the token endpoint {url} did not answer within "
                             f"{self.settings.timeout_seconds:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            # The exception's text names the URL and the socket error only.
            raise TokenError(scrub(f"cannot reach the token endpoint {url}: "
                                   f"{type(exc).__name__}: {exc}", secrets)) from None
        return parse_token_answer(status, body, url=url, grant=self.grant, secrets=secrets)

    def _context(self, which: str) -> str:
        return f"{self.account.name}\0{which}"

    async def _load(self) -> StoredToken | None:
        try:
            return await self.cache.load(self.account.name)
        except Exception as exc:  # noqa: BLE001 — without the cache, ask the endpoint
            log.warning("IMAP account %r: cannot read the token cache (%s); asking the "
                        "token endpoint", self.account.name, type(exc).__name__)
            return None

    async def _save(self, row: StoredToken) -> None:
        try:
            await self.cache.save(self.account.name, row)
        except Exception as exc:  # noqa: BLE001 — the token works without the cache
            log.warning("IMAP account %r: cannot store the access token in the cache (%s); "
                        "other instances and a restart will ask the endpoint again",
                        self.account.name, type(exc).__name__)
