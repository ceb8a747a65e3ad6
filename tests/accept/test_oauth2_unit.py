"""IMAP OAuth2 without a server: config rules, the token endpoint's answers,
token renewal, the sealed cache, the SASL strings (accept/oauth2.py,
accept/imap_client.py); the token rows against both databases."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from maildesk.accept.imap import DbTokenCache
from maildesk.accept.imap_client import sasl_failure, sasl_response, worth_a_fresh_token
from maildesk.accept.oauth2 import (
    Credentials,
    MemoryTokenCache,
    TokenError,
    TokenRefused,
    TokenSource,
    needs_refresh,
    parse_token_answer,
    refresh_time,
    seal,
    token_form,
    unseal,
)
from maildesk.config import ConfigError, ImapAccountSettings, load_settings
from maildesk.store import oauth2_tokens
from maildesk.store.oauth2_tokens import StoredToken
from tests.conftest import Desk

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SECRET = "Sup3r-Geheim~Client/Secret+="
REFRESH = "1//rt-Geheim-Refresh-Token"
URL = "https://login.example.com/tenant/oauth2/v2.0/token"
#: Spelt in two parts: the repository's scan for MAILDESK_* names
#: (tests/test_config_env.py) would take it for a mistyped setting.
PREFIXED_NAME = "MAILDESK_" + "M365_SECRET"


def account(**oauth: Any) -> ImapAccountSettings:
    values: dict[str, Any] = {"token_url": URL, "client_id": "app-id",
                              "client_secret": SECRET,
                              "scope": "https://outlook.office365.com/.default"}
    values.update(oauth)
    return ImapAccountSettings(name="m365", host="outlook.office365.com", user="support@x.de",
                               auth="xoauth2", oauth2=values)


# ----------------------------------------------------------------- config


def load(tmp_path: Path, oauth: str, imap: str = 'auth = "xoauth2"',
         environ: Mapping[str, str] | None = None) -> Any:
    path = tmp_path / "maildesk.toml"
    path.write_text(f'[[imap]]\nname = "m365"\nhost = "outlook.office365.com"\n'
                    f'user = "support@x.de"\n{imap}\n' + (f"[imap.oauth2]\n{oauth}\n" if oauth
                                                          else ""))
    return load_settings(path, environ or {})


CC = f'token_url = "{URL}"\nclient_id = "app-id"\n'


def test_a_client_credentials_account_loads_with_its_secret_from_the_environment(
        tmp_path: Path) -> None:
    settings = load(tmp_path, CC + 'client_secret_env = "M365_SECRET"\n'
                    'scope = "https://outlook.office365.com/.default"')
    settings_oauth = settings.imap[0].oauth2
    assert settings.imap[0].auth == "xoauth2"
    assert settings_oauth.grant_type == "client_credentials"
    assert settings_oauth.client_secret_env == "M365_SECRET"


@pytest.mark.parametrize("key", ["client_secret_env", "refresh_token_env"])
def test_a_maildesk_variable_as_secret_source_is_refused_naming_the_key(
        tmp_path: Path, key: str) -> None:
    extra = 'client_secret = "x"\n' if key == "refresh_token_env" else ""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, CC + extra + f'{key} = "{PREFIXED_NAME}"')
    text = str(caught.value)
    assert f"imap.0.oauth2.{key}" in text
    assert "MAILDESK_" in text and "M365_SECRET" in text


@pytest.mark.parametrize(("oauth", "imap", "says"), [
    ('client_id = "a"\nclient_secret = "s"', 'auth = "xoauth2"', "token_url is not set"),
    (CC, 'auth = "xoauth2"', "needs the client secret"),
    (CC + 'grant = "client_credentials"\nclient_secret = "s"\nrefresh_token = "r"',
     'auth = "oauthbearer"', "choose one grant"),
    (CC + 'grant = "refresh_token"\nclient_secret = "s"', 'auth = "xoauth2"',
     "needs refresh_token"),
    (CC + 'client_secret = "s"\nclient_secret_file = "/x"', 'auth = "xoauth2"',
     "client_secret and client_secret_file are both set"),
    ("", 'auth = "xoauth2"', "needs an [imap.oauth2] table"),
    (CC + 'client_secret = "s"', 'password = "pw"', 'but auth = "password"'),
    (CC + 'client_secret = "s"', 'auth = "xoauth2"\npassword = "pw"', "password and"),
    ('token_url = "http://login.example.com/token"\nclient_id = "a"\nclient_secret = "s"',
     'auth = "xoauth2"', "must be https://"),
])
def test_wrong_combinations_are_refused_at_load_naming_the_key(
        tmp_path: Path, oauth: str, imap: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, oauth, imap)
    assert says in str(caught.value)
    assert "key 'imap.0" in str(caught.value)


def test_a_plain_http_token_url_is_fine_on_loopback(tmp_path: Path) -> None:
    settings = load(tmp_path, 'token_url = "http://127.0.0.1:27100/token"\n'
                    'client_id = "a"\nrefresh_token = "r"')
    assert settings.imap[0].oauth2.grant_type == "refresh_token"


def test_a_config_error_never_quotes_a_secret_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, CC + "client_secret = 1234567")
    assert "imap.0.oauth2.client_secret" in str(caught.value)
    assert "1234567" not in str(caught.value)


# ------------------------------------------------------------ pure rules


def test_a_token_is_renewed_well_before_it_expires() -> None:
    assert refresh_time(T0, 3600) == T0 + timedelta(seconds=3300)
    assert refresh_time(T0, 3) == T0 + timedelta(seconds=1.5)
    assert refresh_time(T0, 0) == T0 + timedelta(seconds=1)  # never a tight loop
    expires, due = T0 + timedelta(hours=1), refresh_time(T0, 3600)
    assert needs_refresh(None, None, T0)
    assert not needs_refresh(due, expires, T0 + timedelta(minutes=54))
    assert needs_refresh(due, expires, T0 + timedelta(minutes=55))
    assert needs_refresh(T0 + timedelta(hours=2), expires, T0 + timedelta(hours=1))


def test_the_token_request_forms() -> None:
    creds = Credentials(SECRET, "")
    cc = account()
    assert token_form(cc.oauth2, creds) == {
        "grant_type": "client_credentials", "client_id": "app-id", "client_secret": SECRET,
        "scope": "https://outlook.office365.com/.default"}
    google = account(client_secret="", refresh_token=REFRESH,
                     scope=" https://mail.google.com/ ")
    assert token_form(google.oauth2, Credentials("", REFRESH), "rotated") == {
        "grant_type": "refresh_token", "client_id": "app-id", "refresh_token": "rotated",
        "scope": "https://mail.google.com/"}


def answer(status: int, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_token_answer(status, raw, url=URL, grant="client_credentials",
                              secrets=(SECRET,))


def test_a_token_answer_is_parsed() -> None:
    got = answer(200, {"access_token": "at-1", "token_type": "Bearer", "expires_in": "3599",
                       "refresh_token": "rt-2"})
    assert (got.access_token, got.lifetime_seconds, got.refresh_token) == ("at-1", 3599, "rt-2")
    assert answer(200, {"access_token": "at-1"}).lifetime_seconds == 3600
    assert "at-1" not in repr(got) and "rt-2" not in repr(got)


def test_a_refused_grant_names_the_error_and_what_to_fix_but_not_the_secret() -> None:
    with pytest.raises(TokenRefused) as caught:
        answer(401, {"error": "invalid_client",
                     "error_description": f"AADSTS7000215: Invalid client secret {SECRET}."})
    text = str(caught.value)
    assert caught.value.error == "invalid_client"
    assert URL in text and "HTTP 401" in text and "AADSTS7000215" in text
    assert "client_secret" in text  # what to fix
    assert SECRET not in text


@pytest.mark.parametrize(("status", "body"), [
    (500, {"error": "server_error"}), (429, {"error": "slow_down"}), (200, b"<html>"),
    (200, {"token_type": "Bearer"}), (200, {"access_token": "x", "token_type": "mac"}),
])
def test_an_unusable_answer_is_a_temporary_token_error(status: int, body: Any) -> None:
    with pytest.raises(TokenError) as caught:
        answer(status, body)
    assert not isinstance(caught.value, TokenRefused)


def test_sealed_tokens_open_only_with_their_key_and_context() -> None:
    key, other = b"k" * 32, b"o" * 32
    sealed = seal(key, "eyJ-access-token", "m365\0access")
    assert "eyJ-access-token" not in sealed and "access-token" not in str(
        base64.urlsafe_b64decode(sealed[3:]))
    assert unseal(key, sealed, "m365\0access") == "eyJ-access-token"
    assert unseal(other, sealed, "m365\0access") is None
    assert unseal(key, sealed, "other\0access") is None
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[20] ^= 1
    assert unseal(key, "v1." + base64.urlsafe_b64encode(bytes(raw)).decode(), "m365\0access") \
        is None
    assert unseal(key, None, "m365\0access") is None
    assert seal(key, "x", "c") != seal(key, "x", "c")  # a fresh nonce each time


def test_sasl_initial_responses() -> None:
    assert sasl_response("XOAUTH2", "a@b.de", "tok", "h", 993) == \
        b"user=a@b.de\x01auth=Bearer tok\x01\x01"
    assert sasl_response("OAUTHBEARER", "a,b=c@d.de", "tok", "imap.gmail.com", 993) == \
        b"n,a=a=2Cb=3Dc@d.de,\x01host=imap.gmail.com\x01port=993\x01auth=Bearer tok\x01\x01"


def test_the_servers_error_challenge_decides_on_a_retry() -> None:
    challenge = b"+ " + base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}')
    failure = sasl_failure([challenge, b"[AUTHENTICATIONFAILED] Authentication failed."])
    assert failure == {"status": "401", "schemes": "bearer", "scope": "mail"}
    assert sasl_failure([b"+ ", b"+ not base64!", b"AUTHENTICATE failed."]) is None
    assert worth_a_fresh_token(failure, cached=False)
    assert worth_a_fresh_token({"status": "invalid_token"}, cached=False)
    assert worth_a_fresh_token(None, cached=True)  # Microsoft: no JSON, a cached token
    assert not worth_a_fresh_token(None, cached=False)
    assert not worth_a_fresh_token({"status": "403"}, cached=False)


# ------------------------------------------------------- the token source


class Endpoint:
    """A fake token endpoint: records forms, answers from a list."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.forms: list[dict[str, str]] = []

    async def __call__(self, url: str, form: Mapping[str, str], timeout: float) -> tuple[int,
                                                                                        bytes]:
        self.forms.append(dict(form))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return status, json.dumps(body).encode()


def ok(token: str, lifetime: int = 3600, **extra: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, **extra}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_a_token_is_reused_from_memory_and_from_the_shared_cache() -> None:
    cache, clock = MemoryTokenCache(), Clock()
    endpoint = Endpoint(ok("at-1"), ok("at-2"))
    first = TokenSource(account(), cache, clock=clock, post=endpoint)
    token = await first.get()
    assert (token.value, token.cached) == ("at-1", False)
    assert (await first.get()).cached
    second = TokenSource(account(), cache, clock=clock, post=endpoint)  # a restart
    assert (await second.get()).value == "at-1"
    assert len(endpoint.forms) == 1
    assert "at-1" not in repr(cache.rows)
    assert "at-1" not in str(cache.rows["m365"].access_token)
    clock.now = T0 + timedelta(minutes=56)  # due for renewal
    assert (await second.get()).value == "at-2"
    assert len(endpoint.forms) == 2


async def test_a_refused_token_is_dropped_from_the_cache_too() -> None:
    cache = MemoryTokenCache()
    endpoint = Endpoint(ok("at-1"), ok("at-2"))
    source = TokenSource(account(), cache, clock=Clock(), post=endpoint)
    await source.refused(await source.get())
    restarted = TokenSource(account(), cache, clock=Clock(), post=endpoint)
    assert (await restarted.get()).value == "at-2"


async def test_another_secret_makes_the_cached_row_unusable() -> None:
    cache = MemoryTokenCache()
    endpoint = Endpoint(ok("at-1"), ok("at-2"))
    await TokenSource(account(), cache, clock=Clock(), post=endpoint).get()
    changed = TokenSource(account(client_secret="the-new-secret"), cache, clock=Clock(),
                          post=endpoint)
    assert (await changed.get()).value == "at-2"


async def test_a_rotated_refresh_token_is_kept_and_used_next_time() -> None:
    cache, clock = MemoryTokenCache(), Clock()
    google = account(client_secret="", refresh_token=REFRESH, scope="https://mail.google.com/")
    endpoint = Endpoint(ok("at-1", refresh_token="rt-2"), ok("at-2", refresh_token="rt-3"),
                        ok("at-3"))
    await TokenSource(google, cache, clock=clock, post=endpoint).get()
    clock.now += timedelta(hours=2)
    await TokenSource(google, cache, clock=clock, post=endpoint).get()
    clock.now += timedelta(hours=2)
    await TokenSource(google, cache, clock=clock, post=endpoint).get()
    assert [f["refresh_token"] for f in endpoint.forms] == [REFRESH, "rt-2", "rt-3"]
    assert "rt-3" not in (cache.rows["m365"].refresh_token or "")


async def test_a_refused_rotated_refresh_token_falls_back_to_the_configured_one() -> None:
    cache, clock = MemoryTokenCache(), Clock()
    google = account(client_secret="", refresh_token=REFRESH)
    endpoint = Endpoint(ok("at-1", refresh_token="rt-2"),
                        (400, {"error": "invalid_grant"}), ok("at-2"))
    await TokenSource(google, cache, clock=clock, post=endpoint).get()
    clock.now += timedelta(hours=2)
    assert (await TokenSource(google, cache, clock=clock, post=endpoint).get()).value == "at-2"
    assert [f["refresh_token"] for f in endpoint.forms] == [REFRESH, "rt-2", REFRESH]


async def test_secrets_come_from_a_file_or_the_named_variable(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    endpoint = Endpoint(ok("at-1"))
    by_file = TokenSource(account(client_secret="", client_secret_file=str(tmp_path / "secret")),
                          post=endpoint)
    await by_file.get()
    by_env = TokenSource(account(client_secret="", client_secret_env="M365_SECRET"),
                         environ={"M365_SECRET": SECRET}, post=endpoint)
    await by_env.get()
    assert [f["client_secret"] for f in endpoint.forms] == [SECRET, SECRET]
    missing = TokenSource(account(client_secret="", client_secret_env="M365_SECRET"),
                          environ={}, post=endpoint)
    with pytest.raises(TokenRefused, match="M365_SECRET"):
        await missing.get()


async def test_a_failed_token_request_shows_no_secret_in_its_error_or_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = Endpoint((400, {"error": "invalid_client",
                           "error_description": f"bad client_secret={SECRET} for app-id"}))
    source = TokenSource(account(), post=echo)
    with pytest.raises(TokenRefused) as caught:
        await source.get()
    assert "invalid_client" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert all(SECRET not in r.getMessage() for r in caplog.records)

    async def unreachable(url: str, form: Mapping[str, str], timeout: float) -> tuple[int,
                                                                                      bytes]:
        raise OSError(f"connection refused sending {dict(form)}")  # a careless library

    with pytest.raises(TokenError) as caught_temp:
        await TokenSource(account(), post=unreachable).get()
    assert URL in str(caught_temp.value) and SECRET not in str(caught_temp.value)


async def test_the_real_post_reaches_no_endpoint_with_a_clear_error() -> None:
    local = account(token_url="http://127.0.0.1:27199/token", timeout_seconds=2)
    with pytest.raises(TokenError) as caught:
        await TokenSource(local).get()
    assert "127.0.0.1:27199" in str(caught.value) and SECRET not in str(caught.value)


# ----------------------------------------------------- the database rows


@pytest.fixture
def engine(desk: Desk) -> Any:
    engine = desk.engine()
    yield engine
    engine.dispose()


async def test_token_rows_in_the_database(engine: Engine) -> None:
    cache = DbTokenCache(engine)
    row = StoredToken("k1", "v1.sealed-a", T0, T0, None)
    assert await cache.load("m365") is None
    await cache.save("m365", row)
    await cache.save("m365", StoredToken("k1", "v1.sealed-b", T0, T0, "v1.rt"))
    assert await cache.load("m365") == StoredToken("k1", "v1.sealed-b", T0, T0, "v1.rt")
    await cache.forget("m365", "v1.sealed-a")  # no longer the stored one: kept
    assert (await cache.load("m365")).access_token == "v1.sealed-b"
    await cache.forget("m365", "v1.sealed-b")
    assert await cache.load("m365") == StoredToken("k1", None, None, None, "v1.rt")
    with engine.connect() as conn:
        assert oauth2_tokens.load(conn, "other") is None


async def test_a_token_source_over_the_database_survives_a_restart(engine: Engine) -> None:
    endpoint = Endpoint(ok("at-1"))
    await TokenSource(account(), DbTokenCache(engine), post=endpoint).get()
    again = await TokenSource(account(), DbTokenCache(engine), post=endpoint).get()
    assert again.value == "at-1" and len(endpoint.forms) == 1
