"""IMAP with OAuth2 against a real Dovecot: the whole exchange is real.

Dovecot's oauth2 passdb (tests/dovecot.py, oauth2_introspection_url) asks
the test's own authorization server (AuthServer below, an aiohttp app in a
thread) whether a token is active; the same server is the token endpoint
the poller gets its tokens from (client-credentials and refresh-token
grants, strict refresh-token rotation). In CI a missing dovecot fails.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import Engine

from maildesk.accept.imap import ImapPoller
from maildesk.accept.imap_client import check_account
from maildesk.cli.check import check_imap
from maildesk.config import ConfigError, ImapAccountSettings, load_settings
from maildesk.models import OAuth2Token
from tests.accept.test_imap import Ingest, eventually, mails, running, subjects
from tests.conftest import Desk
from tests.dovecot import Dovecot, ImapUser, Proxy, dovecot_for_tests, free_port

LOGGER = "maildesk.accept.imap"
#: Spelt in two parts: tests/test_config_env.py scans the repository for
#: MAILDESK_* names and would take this one for a mistyped setting.
PREFIXED_NAME = "MAILDESK_" + "M365_SECRET"


# ------------------------------------------------- the authorization server


@dataclass
class Client:
    """An app registration: its secret, whose mailbox its tokens open, how
    long they live."""

    secret: str
    user: str
    lifetime: int = 3600
    requests: list[dict[str, str]] = field(default_factory=list)  # the token requests' forms
    refused: int = 0


@dataclass
class Issued:
    user: str
    expires: float  # time.monotonic()
    revoked: bool = False


class AuthServer:
    """Token endpoint (POST /token) and RFC 7662-style introspection
    (POST /introspect, which Dovecot asks) in one aiohttp app, run in a
    thread of its own so that one server lasts the whole module."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, Issued] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client id
        self.introspected: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AuthServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/introspect", self._introspect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def register(self, user: ImapUser, lifetime: int = 3600) -> tuple[str, Client]:
        client_id = f"app-{user.name}-{secrets.token_hex(3)}"
        self.clients[client_id] = Client(f"s3cret-{secrets.token_urlsafe(12)}", user.name,
                                         lifetime)
        return client_id, self.clients[client_id]

    def refresh_token_for(self, client_id: str) -> str:
        """A refresh token as a consent flow would have given it."""
        token = f"rt-{secrets.token_urlsafe(16)}"
        self.refresh_tokens[token] = client_id
        return token

    def revoke(self, client: Client) -> None:
        for issued in self.tokens.values():
            if issued.user == client.user:
                issued.revoked = True

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        client = self.clients.get(str(form.get("client_id")))
        if client is not None:
            client.requests.append({k: str(v) for k, v in form.items()})
        if client is None or form.get("client_secret") != client.secret:
            if client is not None:
                client.refused += 1
            return web.json_response({"error": "invalid_client", "error_description":
                                      "AADSTS7000215: Invalid client secret provided."},
                                     status=401)
        answer: dict[str, Any] = {}
        if form.get("grant_type") == "refresh_token":
            owner = self.refresh_tokens.pop(str(form.get("refresh_token")), None)
            if owner != form["client_id"]:
                return web.json_response({"error": "invalid_grant", "error_description":
                                          "the refresh token is unknown or was used"},
                                         status=400)
            rotated = f"rt-{secrets.token_urlsafe(16)}"  # strict rotation: the old one is gone
            self.refresh_tokens[rotated] = str(form["client_id"])
            answer["refresh_token"] = rotated
        elif form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"at-{secrets.token_urlsafe(24)}"
        self.tokens[token] = Issued(client.user, time.monotonic() + client.lifetime)
        return web.json_response({"access_token": token, "token_type": "Bearer",
                                  "expires_in": client.lifetime, **answer})

    async def _introspect(self, request: web.Request) -> web.Response:
        token = str((await request.post()).get("token", ""))
        self.introspected.append(token)
        issued = self.tokens.get(token)
        if issued is None or issued.revoked or time.monotonic() > issued.expires:
            return web.json_response({"active": False})
        return web.json_response({"active": True, "username": issued.user})


@pytest.fixture(scope="module")
def auth() -> Iterator[AuthServer]:
    server = AuthServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dovecot(auth: AuthServer) -> Iterator[Dovecot]:
    with dovecot_for_tests(oauth2_introspection_url=f"{auth.url}/introspect") as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> ImapUser:
    return dovecot.add_user()


@pytest.fixture
def engine(desk: Desk) -> Iterator[Engine]:
    engine = desk.engine()
    yield engine
    engine.dispose()


def oauth_account(dovecot: Dovecot, auth: AuthServer, user: ImapUser, client_id: str,
                  secret: str, mechanism: str = "xoauth2", port: int | None = None,
                  **oauth: Any) -> ImapAccountSettings:
    """The account for `user`; `oauth` are [imap.oauth2] keys."""
    settings = {"token_url": f"{auth.url}/token", "client_id": client_id,
                "client_secret": secret, "scope": "https://outlook.office365.com/.default"}
    settings.update(oauth)
    return dovecot.account(user, password="", auth=mechanism, oauth2=settings,
                           port=port or dovecot.port)


def logins(dovecot: Dovecot, user: ImapUser, mechanism: str) -> int:
    return dovecot.log.count(f"Login: user=<{user.name}>, method={mechanism.upper()}")


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_mail_in_an_oauth2_mailbox_becomes_a_ticket(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine,
        mechanism: str, caplog: pytest.LogCaptureFixture) -> None:
    client_id, client = auth.register(user)
    dovecot.append(user, *mails(2))
    account = oauth_account(dovecot, auth, user, client_id, client.secret, mechanism)
    ingest = Ingest(desk, engine)
    caplog.set_level(logging.DEBUG)  # aioimaplib logs what it sends at DEBUG
    async with asyncio.timeout(20):
        p = ImapPoller(account, engine, ingest, "test-1")
        async with running(p):
            await eventually(lambda: p.polls >= 1, what="a first poll")
    assert ingest.actions == ["created", "created"]
    [token] = [t for t, issued in auth.tokens.items() if issued.user == user.name]
    assert all(token not in r.getMessage() and client.secret not in r.getMessage()
               for r in caplog.records)
    assert "AUTHENTICATE" not in caplog.text  # the command line is never logged
    assert subjects(engine) == ["Anfrage 1", "Anfrage 2"]
    assert [r["grant_type"] for r in client.requests] == ["client_credentials"]
    assert logins(dovecot, user, mechanism) == 1
    assert p.errors == 0


async def test_the_cached_token_is_reused_by_the_next_poller_start(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine) -> None:
    client_id, client = auth.register(user)
    account = oauth_account(dovecot, auth, user, client_id, client.secret)
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        first = ImapPoller(account, engine, ingest, "host-a")
        async with running(first):
            await eventually(lambda: first.polls >= 1)
        dovecot.append(user, *mails(1, "neu "))
        second = ImapPoller(account, engine, ingest, "host-b")  # a restart, or another host
        async with running(second):
            await eventually(lambda: second.polls >= 1)
    assert ingest.actions == ["created"]
    assert len(client.requests) == 1  # one token request, not two
    assert logins(dovecot, user, "xoauth2") == 2
    with engine.connect() as conn:
        row = conn.execute(select(OAuth2Token.__table__)).one()
    issued = next(t for t, i in auth.tokens.items() if i.user == user.name)
    assert row.account == account.name and row.access_token
    assert issued not in row.access_token  # sealed, not the token itself


async def test_a_revoked_cached_token_is_replaced_and_the_poll_goes_on(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client_id, client = auth.register(user)
    account = oauth_account(dovecot, auth, user, client_id, client.secret)
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        first = ImapPoller(account, engine, ingest, "test-1")
        async with running(first):
            await eventually(lambda: first.polls >= 1)
        auth.revoke(client)  # the cached token still looks valid for an hour
        dovecot.append(user, *mails(1))
        second = ImapPoller(account, engine, ingest, "test-1")
        async with running(second):
            await eventually(lambda: second.polls >= 1)
    assert ingest.actions == ["created"]
    assert len(client.requests) == 2
    assert second.errors == 0  # the same session went on with the fresh token
    assert any("refused the cached access token" in r.getMessage() for r in caplog.records)
    assert logins(dovecot, user, "xoauth2") == 2


async def test_without_sasl_ir_the_token_follows_the_servers_go_ahead(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine) -> None:
    """A server without SASL-IR answers AUTHENTICATE with an empty `+`
    first; a refused token then gets a second `+` (the error challenge)."""
    client_id, client = auth.register(user)
    proxy = await Proxy(dovecot.port, strip=(b" SASL-IR",)).start()
    account = oauth_account(dovecot, auth, user, client_id, client.secret, port=proxy.port)
    ingest = Ingest(desk, engine)
    try:
        async with asyncio.timeout(20):
            first = ImapPoller(account, engine, ingest, "test-1")
            async with running(first):
                await eventually(lambda: first.polls >= 1)
            auth.revoke(client)
            dovecot.append(user, *mails(1))
            second = ImapPoller(account, engine, ingest, "test-1")
            async with running(second):
                await eventually(lambda: second.polls >= 1)
    finally:
        await proxy.close()
    assert ingest.actions == ["created"] and second.errors == 0
    assert len(client.requests) == 2
    sent = bytes(proxy.sent)
    assert sent.count(b" AUTHENTICATE XOAUTH2\r\n") == 3  # none carries the token inline
    assert logins(dovecot, user, "xoauth2") == 2


async def test_short_lived_tokens_are_renewed_and_a_rotated_refresh_token_is_used(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    """Google style: the refresh-token grant; tokens live 3 s, and each
    refresh token works once (the server rotates it)."""
    caplog.set_level(logging.INFO)
    client_id, client = auth.register(user, lifetime=3)
    account = oauth_account(dovecot, auth, user, client_id, client.secret, "oauthbearer",
                            refresh_token=auth.refresh_token_for(client_id),
                            scope="https://mail.google.com/")
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(30):
        p = ImapPoller(account, engine, ingest, "test-1")
        async with running(p):
            await eventually(lambda: p.polls >= 1)
            await asyncio.sleep(4)  # past the first token's expiry
            dovecot.append(user, *mails(1, "spät "))
            await eventually(lambda: ingest.actions == ["created"], what="the late mail")
        # A restart after the last token expired: the stored rotated refresh
        # token works; the configured one was used up long ago.
        await asyncio.sleep(3.2)
        dovecot.append(user, *mails(1, "nach dem Neustart "))
        again = ImapPoller(account, engine, ingest, "test-1")
        async with running(again):
            await eventually(lambda: again.polls >= 1)
    assert ingest.actions == ["created", "created"]
    grants = [r["grant_type"] for r in client.requests]
    assert grants == ["refresh_token"] * len(grants) and len(grants) >= 3
    assert client.refused == 0 and p.errors == 0 and again.errors == 0
    assert logins(dovecot, user, "oauthbearer") >= 3
    assert any("due for renewal" in r.getMessage() for r in caplog.records)
    # every refresh token was the newest one (a reused one would be invalid_grant)
    assert "invalid_grant" not in caplog.text


async def test_a_wrong_client_secret_fails_check_clearly_and_the_poller_backs_off(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client_id, client = auth.register(user)
    wrong = "falsches-Geheimnis-4711"
    account = oauth_account(dovecot, auth, user, client_id, wrong)
    ok, text = await check_account(account, timeout=5)
    assert not ok
    assert "invalid_client" in text and "AADSTS7000215" in text and "client_secret" in text
    assert f"{auth.url}/token" in text and user.name in text
    assert wrong not in text
    client.requests.clear()

    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = ImapPoller(account, engine, ingest, "test-1")
        async with running(p):
            await eventually(lambda: p.errors >= 1)
            status = p.status()
            assert not status.healthy and "invalid_client" in (status.last_error or "")
            await asyncio.sleep(3)
    # Backoff from 1 s (jittered 50-100 %): attempts at 0, <=1, <=3 s: never a loop.
    assert 2 <= len(client.requests) <= 4, len(client.requests)
    errors = [r.getMessage() for r in caplog.records if r.name == LOGGER
              and r.levelno == logging.ERROR]
    assert errors and account.name in errors[0] and "invalid_client" in errors[0]
    assert "retrying in" in errors[0]
    assert all(wrong not in r.getMessage() for r in caplog.records)
    assert logins(dovecot, user, "xoauth2") == 0 and ingest.outcomes == []


async def test_check_reports_the_token_and_the_login_and_leaves_the_token_for_the_poller(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser, desk: Desk, engine: Engine) -> None:
    client_id, client = auth.register(user)
    dovecot.append(user, *mails(3))
    account = oauth_account(dovecot, auth, user, client_id, client.secret)
    settings = desk.settings.model_copy(update={"imap": (account,)})
    [result] = await asyncio.to_thread(lambda: list(check_imap(settings)))
    assert result.ok, result.detail
    assert account.name in result.name
    assert f"token from {auth.url}/token (client_credentials grant" in result.detail
    assert "AUTHENTICATE XOAUTH2 OK" in result.detail and "3 messages" in result.detail
    assert client.secret not in result.detail
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = ImapPoller(account, engine, ingest, "test-1")
        async with running(p):
            await eventually(lambda: p.polls >= 1)
    assert len(client.requests) == 1  # the poller took check's token from the database
    assert ingest.actions == ["created"] * 3


async def test_a_token_the_mailbox_refuses_is_a_clear_login_failure(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser) -> None:
    """The endpoint gives a token, but for another mailbox (Microsoft 365:
    no Add-MailboxPermission): AUTHENTICATE ends with NO, never hangs."""
    other = dovecot.add_user()
    client_id, client = auth.register(other)
    account = oauth_account(dovecot, auth, user, client_id, client.secret)
    began = time.monotonic()
    ok, text = await check_account(account, timeout=10)
    assert not ok and time.monotonic() - began < 5, text
    assert "AUTHENTICATIONFAILED" in text and "Add-MailboxPermission" in text, text
    assert "token from" in text and client.secret not in text


async def test_an_unreachable_token_endpoint_is_named_by_check(
        dovecot: Dovecot, auth: AuthServer, user: ImapUser) -> None:
    account = oauth_account(dovecot, auth, user, "app", "s",
                            token_url=f"http://127.0.0.1:{free_port()}/token")
    ok, text = await check_account(account, timeout=5)
    assert not ok and "cannot reach the token endpoint" in text, text


def test_a_maildesk_variable_for_the_secret_is_refused_at_load(tmp_path: Any) -> None:
    path = tmp_path / "maildesk.toml"
    path.write_text('[[imap]]\nname = "m365"\nhost = "outlook.office365.com"\n'
                    'user = "support@x.de"\nauth = "xoauth2"\n[imap.oauth2]\n'
                    'token_url = "https://login.microsoftonline.com/t/oauth2/v2.0/token"\n'
                    f'client_id = "id"\nclient_secret_env = "{PREFIXED_NAME}"\n')
    with pytest.raises(ConfigError, match=r"imap\.0\.oauth2\.client_secret_env"):
        load_settings(path, {PREFIXED_NAME: "x"})
