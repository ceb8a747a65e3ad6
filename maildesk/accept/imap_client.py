"""The IMAP wire for maildesk: one aioimaplib client, its answers parsed.

aioimaplib quirks this module works around: a lost connection never fails
the pending command (FETCH waits for its inactivity timeout, IDLE forever),
so every command is raced against the connection-lost callback; there is no
STARTTLS method (done here with `loop.start_tls`); LOGIN sends the user name
unquoted (quoted here); untagged EXISTS outside IDLE/NOOP are dropped, so
the poller leaves IDLE every `poll_seconds` for a safety poll; a FETCH
answer is re-scanned per line, so new UIDs are listed with UID SEARCH and
fetched in batches (accept/imap.py).

AUTHENTICATE (auth = "xoauth2" / "oauthbearer") is our own command too:
aioimaplib's xoauth2() never answers the `+ <base64 JSON>` challenge with
which a server reports a refused token, so it waits until its timeout. Here
that challenge is answered (an empty line for XOAUTH2, `AQ==` for
OAUTHBEARER, RFC 7628) so the server ends with NO; a cached token that is
refused is dropped and a fresh one tried once. The command line carries the
token, so it is written to the socket directly and never logged.

`check_account` is `maildesk check`'s login test.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aioimaplib import AUTH, IMAP4, NONAUTH, AioImapException, Command, Response, quoted

from maildesk.accept.oauth2 import AccessToken, TokenCache, TokenError, TokenSource
from maildesk.config import ImapAccountSettings
from maildesk.errors import TemporaryError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A command without an answer for this long counts as a dead connection.
COMMAND_TIMEOUT = 60.0
#: How long a stopping session may spend on DONE / LOGOUT.
GOODBYE_SECONDS = 0.5


class ImapError(TemporaryError):
    """The server refused a command or answered something unusable."""


class LoginFailed(ImapError):
    """LOGIN was refused (wrong user or password, or login disabled)."""


class ConnectionLost(ImapError):
    """The server closed the connection."""


class _Stopped(Exception):
    """The stop event was set while waiting for the server."""


# --------------------------------------------------------------- the wire


@dataclass(frozen=True)
class Folder:
    """What SELECT told about the folder."""

    uidvalidity: int | None
    exists: int
    permanent_flags: tuple[str, ...]
    read_only: bool

    def allows(self, flag: str) -> bool:
        """May the flag be stored permanently (RFC 3501 PERMANENTFLAGS)?"""
        if flag.lower() in (f.lower() for f in self.permanent_flags):
            return True
        return not flag.startswith("\\") and "\\*" in self.permanent_flags


def encode_mailbox(name: str) -> str:
    """A mailbox name as an IMAP quoted string, non-ASCII in modified UTF-7
    (RFC 3501 §5.1.3), e.g. 'Erledigt/Überprüft' -> '"Erledigt/&ANw-berpr&APw-ft"'."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=")
            out.append("&" + data.decode("ascii").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return quoted("".join(out))


def _text(response: Response) -> str:
    """The server's human text of a response (its last line)."""
    for line in reversed(response.lines):
        if isinstance(line, bytes) and line.strip():
            return line.decode("utf-8", "replace").strip()
    return "(no text)"


def _check(response: Response, what: str) -> Response:
    if response.result != "OK":
        raise ImapError(f"{what} failed: {response.result} {_text(response)}")
    return response


def describe(exc: BaseException) -> str:
    """A one-line reason for a log line or `maildesk check`."""
    text = str(exc).strip()
    if isinstance(exc, TimeoutError):
        return f"no answer within the timeout{': ' + text if text else ''}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_FETCH_LINE = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_LITERAL = re.compile(rb"\{(\d+)\}$")


def parse_search(lines: Sequence[Any]) -> list[int]:
    """The UIDs of a `UID SEARCH` answer (aioimaplib drops the word SEARCH
    from the untagged line; the last line is the tagged status text)."""
    uids: list[int] = []
    for line in lines[:-1]:
        words = line.split() if isinstance(line, bytes) else []
        if words[:1] == [b"SEARCH"]:
            words = words[1:]
        if words and all(w.isdigit() for w in words):
            uids += [int(w) for w in words]
    return uids


def parse_sizes(lines: Sequence[Any]) -> list[tuple[int, int]]:
    """(uid, size) pairs from a `UID FETCH … (UID RFC822.SIZE)` response."""
    found = []
    for line in lines:
        if isinstance(line, bytes) and _FETCH_LINE.match(line):
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid:
                found.append((int(uid.group(1)), int(size.group(1)) if size else 0))
    return found


def parse_bodies(lines: Sequence[Any]) -> dict[int, bytes]:
    """uid -> raw message from a `UID FETCH … (UID BODY.PEEK[])` response.

    aioimaplib gives a literal as the bytearray after the line ending in
    `{size}`; the UID is in that line or in the rest after the literal.
    """
    bodies: dict[int, bytes] = {}
    for i, line in enumerate(lines):
        if not (isinstance(line, bytes) and _FETCH_LINE.match(line) and _LITERAL.search(line)):
            continue
        if i + 1 >= len(lines) or not isinstance(lines[i + 1], bytearray):
            continue
        uid = _UID.search(line)
        if uid is None and i + 2 < len(lines) and isinstance(lines[i + 2], bytes):
            uid = _UID.search(lines[i + 2])
        if uid is not None:
            bodies[int(uid.group(1))] = bytes(lines[i + 1])
    return bodies


def uid_set(uids: Sequence[int]) -> str:
    """'1:3,7,9:10' for [1, 2, 3, 7, 9, 10]."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(parts)


# ------------------------------------------------------ SASL (OAuth2 tokens)


def sasl_response(mechanism: str, user: str, token: str, host: str, port: int) -> bytes:
    """The initial client response (before base64) of XOAUTH2 (Google's and
    Microsoft's format) or OAUTHBEARER (RFC 7628, with its GS2 header)."""
    if mechanism == "XOAUTH2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    authzid = user.replace("=", "=3D").replace(",", "=2C")  # RFC 5801 saslname
    return f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


#: What a client answers to the server's error challenge so that the
#: exchange ends (with NO): XOAUTH2 an empty response, OAUTHBEARER %x01.
SASL_ABORT = {"XOAUTH2": b"", "OAUTHBEARER": b"AQ=="}


def sasl_failure(lines: Sequence[Any]) -> dict[str, Any] | None:
    """The error JSON of a refused token: the `+ <base64>` challenge the
    server sent before its NO (Google, Dovecot; Microsoft sends none)."""
    for line in lines:
        if isinstance(line, bytes) and line.startswith(b"+"):
            data = line[1:].strip()
            if not data:
                continue
            try:
                decoded = json.loads(base64.b64decode(data, validate=True))
            except (ValueError, binascii.Error):
                continue
            if isinstance(decoded, dict):
                return decoded
    return None


def worth_a_fresh_token(failure: dict[str, Any] | None, cached: bool) -> bool:
    """After a NO: is a fresh token worth one more try? Yes when the refused
    one came from a cache (it may have been revoked or have expired early),
    or the server says the token itself is bad (401 / invalid_token; Google
    says 400). A fresh token that is refused for another reason (no
    permission on the mailbox) will not do better."""
    status = str((failure or {}).get("status", "")).strip().lower()
    return cached or status in ("400", "401", "invalid_token")


def sasl_text(response: Response, failure: dict[str, Any] | None) -> str:
    """The server's answer to a refused AUTHENTICATE, for a log line."""
    text = _text(response)
    if failure:
        said = ", ".join(f"{k} {v}" for k, v in failure.items() if isinstance(v, str | int))
        text += f" (server says: {said})"
    return text


class _Authenticate(Command):
    """AUTHENTICATE <mechanism>: answers the server's continuations itself.

    aioimaplib appends each `+` line to the pending sync command and calls
    its flush() (and flush() again after every chunk read). The first
    continuation asks for the initial response when the server has no
    SASL-IR; any other is the error challenge, answered with SASL_ABORT.
    The token is only in `_initial`, never in `args`: aioimaplib prints a
    command (in exceptions, at DEBUG) by its args.
    """

    def __init__(self, tag: str, mechanism: str, initial: bytes, inline: bool,
                 write: Any, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__("AUTHENTICATE", tag, mechanism, loop=loop)
        self._initial = initial
        self._initial_sent = inline
        self._abort = SASL_ABORT[mechanism]
        self._write = write
        self._answered = 0

    def flush(self) -> None:
        continuations = [line for line in self._resp_lines
                         if isinstance(line, bytes) and line.startswith(b"+")]
        while self._answered < len(continuations):
            self._answered += 1
            if not self._initial_sent:
                self._initial_sent = True
                self._write(self._initial + b"\r\n")
            else:
                self._write(self._abort + b"\r\n")


async def _run_authenticate(protocol: Any, command: _Authenticate, line: bytes) -> Response:
    """What aioimaplib's execute() and change_state do for a sync command,
    but the line is written as it is (and not logged)."""
    async with protocol.state_condition:
        if protocol.state != NONAUTH:
            raise ImapError(f"AUTHENTICATE is not possible in state {protocol.state}")
        if protocol.pending_sync_command is not None:
            await protocol.pending_sync_command.wait()
        if protocol.pending_async_commands:
            await protocol.wait_async_pending_commands()
        protocol.pending_sync_command = command
        protocol.transport.write(line)
        try:
            await command.wait()
        finally:
            if protocol.pending_sync_command is command:
                protocol.pending_sync_command = None
        if command.response.result == "OK":
            protocol.state = AUTH
        protocol.state_condition.notify_all()
    return command.response


class Connection:
    """One aioimaplib client, with every wait raced against the connection
    being lost and (for the interruptible ones) against `stop`."""

    def __init__(self, account: ImapAccountSettings, stop: asyncio.Event,
                 timeout: float = COMMAND_TIMEOUT) -> None:
        self.account = account
        self.stop = stop
        self.timeout = timeout
        self.lost = asyncio.Event()
        self.client: IMAP4 | None = None
        self._idle: asyncio.Future[Response] | None = None

    @property
    def capabilities(self) -> set[str]:
        assert self.client is not None
        return {c.upper() for c in self.client.protocol.capabilities}

    async def call(self, awaitable: Awaitable[T], interruptible: bool = True) -> T:
        task = asyncio.ensure_future(awaitable)
        watchers = [asyncio.ensure_future(self.lost.wait())]
        if interruptible:
            watchers.append(asyncio.ensure_future(self.stop.wait()))
        try:
            done, _ = await asyncio.wait([task, *watchers], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            for watcher in watchers:
                watcher.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.wait([task], timeout=1)
        if self.lost.is_set():
            raise ConnectionLost("the server closed the connection")
        raise _Stopped

    def _timed(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        return asyncio.wait_for(coro, self.timeout)

    async def open(self) -> None:
        account = self.account
        context = ssl.create_default_context() if account.security != "none" else None
        self.client = IMAP4(
            account.host, account.port, timeout=self.timeout,
            conn_lost_cb=lambda _exc: self.lost.set(),
            ssl_context=context if account.security == "tls" else None,
        )
        await self.call(self.client.wait_hello_from_server())
        if account.security == "starttls":
            assert context is not None
            await self._starttls(context)

    async def _starttls(self, context: ssl.SSLContext) -> None:
        assert self.client is not None
        protocol = self.client.protocol
        if "STARTTLS" not in self.capabilities:
            raise ImapError("the server does not offer STARTTLS (security = \"starttls\")")
        command = Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        _check(await self.call(self._timed(protocol.execute(command))), "STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await self.call(self._timed(loop.start_tls(
            protocol.transport, protocol, context, server_hostname=self.account.host)))
        protocol.transport = transport
        await self.call(self._timed(protocol.capability()))

    async def login(self, password: str) -> None:
        assert self.client is not None
        response = await self.call(self.client.login(quoted(self.account.user), password))
        if response.result != "OK":
            raise LoginFailed(_text(response))
        # Capabilities change after login (IDLE, MOVE, UIDPLUS); ask again
        # rather than trust aioimaplib's parse of the LOGIN answer.
        await self.call(self._timed(self.client.protocol.capability()))

    async def authenticate(self, token: str) -> Response:
        """One AUTHENTICATE with the account's mechanism and `token`."""
        assert self.client is not None
        protocol = self.client.protocol
        mechanism = self.account.auth.upper()
        initial = base64.b64encode(sasl_response(mechanism, self.account.user, token,
                                                 self.account.host, self.account.port))
        inline = "SASL-IR" in self.capabilities
        tag = protocol.new_tag()
        command = _Authenticate(tag, mechanism, initial, inline, protocol.transport.write,
                                protocol.loop)
        line = f"{tag} AUTHENTICATE {mechanism}".encode() + (b" " + initial if inline else b"")
        return await self.call(self._timed(_run_authenticate(protocol, command,
                                                             line + b"\r\n")))

    async def login_oauth2(self, tokens: TokenSource) -> AccessToken:
        """AUTHENTICATE with a token from `tokens`; a refused cached token
        is dropped and a fresh one tried once. Returns the token that
        worked; LoginFailed when the server refuses, TokenError /
        TokenRefused when no token can be got."""
        assert self.client is not None
        mechanism = self.account.auth.upper()
        token = await tokens.get()
        response = await self.authenticate(token.value)
        if response.result != "OK":
            failure = sasl_failure(response.lines)
            if not worth_a_fresh_token(failure, token.cached):
                raise LoginFailed(self._refused(mechanism, response, failure))
            log.info("IMAP account %r: the server refused the %s access token (%s); "
                     "asking the token endpoint for a fresh one", self.account.name,
                     "cached" if token.cached else "new", sasl_text(response, failure))
            await tokens.refused(token)
            token = await tokens.get(force=True)
            response = await self.authenticate(token.value)
            if response.result != "OK":
                raise LoginFailed(self._refused(mechanism, response,
                                                sasl_failure(response.lines)))
        await self.call(self._timed(self.client.protocol.capability()))
        return token

    def _refused(self, mechanism: str, response: Response,
                 failure: dict[str, Any] | None) -> str:
        text = (f"AUTHENTICATE {mechanism} refused a fresh access token: "
                f"{sasl_text(response, failure)}")
        if f"AUTH={mechanism}" not in self.capabilities:
            text += f"; the server does not offer AUTH={mechanism}"
        return (text + "; the token endpoint accepted the app, the mailbox did not: check "
                "user (the mailbox address) and the app's access to it (Microsoft 365: "
                "IMAP.AccessAsApp with admin consent, New-ServicePrincipal and "
                "Add-MailboxPermission; Google: scope https://mail.google.com/)")

    async def select(self, folder: str, readonly: bool = False) -> Folder:
        assert self.client is not None
        name = encode_mailbox(folder)
        if readonly:
            response = await self.call(self.client.examine(name))
        else:
            response = await self.call(self.client.select(name))
        _check(response, f"SELECT {folder!r}")
        data = b"\n".join(line for line in response.lines if isinstance(line, bytes))
        validity = re.search(rb"\[UIDVALIDITY (\d+)\]", data)
        exists = re.search(rb"^(\d+) EXISTS", data, re.MULTILINE)
        flags = re.search(rb"\[PERMANENTFLAGS \(([^)]*)\)\]", data)
        return Folder(
            uidvalidity=int(validity.group(1)) if validity else None,
            exists=int(exists.group(1)) if exists else 0,
            # No PERMANENTFLAGS: RFC 3501 says every flag is permanent.
            permanent_flags=tuple(flags.group(1).decode().split()) if flags else ("\\*", "\\Seen"),
            read_only=b"[READ-ONLY]" in data,
        )

    async def noop(self) -> None:
        assert self.client is not None
        _check(await self.call(self.client.noop()), "NOOP")

    async def uid(self, what: str, *args: str, interruptible: bool = True) -> Response:
        assert self.client is not None
        call = self.client.uid(what, *args)
        if what.lower() != "fetch":  # aioimaplib times FETCH out by inactivity itself
            call = self._timed(call)
        return _check(await self.call(call, interruptible), f"UID {what.upper()}")

    async def uid_search(self, criteria: str) -> Response:
        assert self.client is not None
        return _check(await self.call(self.client.uid_search(criteria, charset=None)),
                      "UID SEARCH")

    async def create(self, folder: str) -> None:
        """Create a folder; one that exists already is fine."""
        assert self.client is not None
        response = await self.call(self.client.create(encode_mailbox(folder)), False)
        if response.result != "OK" and b"ALREADYEXISTS" not in b" ".join(
                line for line in response.lines if isinstance(line, bytes)):
            log.debug("CREATE %r: %s %s", folder, response.result, _text(response))

    async def expunge(self) -> None:
        assert self.client is not None
        _check(await self.call(self.client.expunge(), False), "EXPUNGE")

    async def idle(self, timeout: float) -> bool:
        """IDLE until the server announces new mail (True) or `timeout`
        passes (False). Raises _Stopped / ConnectionLost."""
        assert self.client is not None
        queue = self.client.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()
        self._idle = await self.call(self.client.idle_start(timeout=timeout + 60))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        news = False
        while not news and (left := deadline - loop.time()) > 0:
            try:
                lines = await self.call(asyncio.wait_for(queue.get(), left))
            except TimeoutError:
                break
            news = any(isinstance(line, bytes) and line.endswith(b"EXISTS") for line in lines)
        await self.idle_done()
        return news

    async def idle_done(self) -> None:
        assert self.client is not None
        if self._idle is None:
            return
        idle, self._idle = self._idle, None
        if idle.done():  # the server ended IDLE itself
            _check(idle.result(), "IDLE")
            return
        self.client.idle_done()
        _check(await self.call(self._timed(idle), False), "IDLE")

    async def close(self) -> None:
        """LOGOUT if the connection still works (briefly), then close it."""
        client, self.client = self.client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if not self.lost.is_set() and client.protocol.transport is not None:
                async with asyncio.timeout(GOODBYE_SECONDS):
                    if self._idle is not None and not self._idle.done():
                        client.idle_done()
                        await self._idle
                    if client.get_state() in ("AUTH", "SELECTED", "NONAUTH"):
                        await client.logout()
        if self._idle is not None:
            self._idle.cancel()
        if client.protocol.transport is not None:
            client.protocol.transport.close()
        connecting = client._client_task
        if connecting.done():
            with contextlib.suppress(BaseException):
                connecting.exception()
        else:
            connecting.cancel()
        for task in (*client.tasks, *client.protocol.tasks):
            task.cancel()


async def check_account(account: ImapAccountSettings, timeout: float = 10,
                        cache: TokenCache | None = None) -> tuple[bool, str]:
    """Log in and open the folder read-only, for `maildesk check`.

    With OAuth2 a fresh token is asked for first (the endpoint and the
    grant are what is checked; it goes into `cache` for the poller), then
    AUTHENTICATE. (True, "… N messages …") or (False, the reason naming
    what to fix); never raises, and never shows a secret or token.
    """
    where = f"{account.user}@{account.host}:{account.port} ({account.security})"
    conn = Connection(account, asyncio.Event(), timeout)
    got = asking = ""
    try:
        async with asyncio.timeout(timeout):
            if account.oauth2 is not None:
                tokens = TokenSource(account, cache)
                asking = f" from the token endpoint {account.oauth2.token_url}"
                token = await tokens.get(force=True)
                asking = ""
                got = (f"token from {account.oauth2.token_url} ({tokens.grant} grant, valid until "
                       f"{token.expires_at:%Y-%m-%d %H:%M:%S} UTC), ")
                await conn.open()
                await conn.login_oauth2(tokens)
                got += f"AUTHENTICATE {account.auth.upper()} OK, "
            else:
                await conn.open()
                await conn.login(account.read_password())
            folder = await conn.select(account.folder, readonly=True)
            capabilities = conn.capabilities
    except TokenError as exc:  # and TokenRefused: the endpoint's error and what to fix
        return False, f"{where}: no access token: {exc}"
    except LoginFailed as exc:
        return False, f"{where}: {got}login failed: {exc}"
    except TimeoutError:
        return False, f"{where}: no answer{asking} within {timeout:g} s"
    except OSError as exc:  # refused, unreachable, DNS, TLS certificate
        return False, f"{where}: cannot connect: {describe(exc)}"
    except (AioImapException, ImapError) as exc:
        return False, f"{where}: {describe(exc)}"
    finally:
        await conn.close()
    features = ", ".join(f"{c} {'yes' if c in capabilities else 'no'}" for c in ("IDLE", "MOVE"))
    return True, (f"{where}: {got}folder {account.folder!r} has {folder.exists} messages "
                  f"({features})")
