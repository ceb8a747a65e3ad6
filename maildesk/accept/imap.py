"""The IMAP poller (SPEC §2): one task per configured `[[imap]]` account.

Accept-stage rule: a message is flagged (or moved) and `last_uid` advanced
only after `ingest` returned, i.e. after its raw bytes and its ticket are
committed. A crash or a dropped connection in between means the message is
fetched again; the dedup key of the spool makes that a harmless `duplicate`.

One session: lease -> connect -> LOGIN -> SELECT -> poll (UID > last_uid, in
batches) -> wait (IDLE, or sleep poll_seconds) -> poll ... A connection error
ends the session; the next one starts after an exponential backoff
(capped at the account's `backoff_max_seconds`, 60 s by default).

Several instances: one polls an account at a time, the holder of its lease
(a row in `imap_state`). The lease lasts `lease_seconds` (30) and a
heartbeat task renews it every third of that, independent of IDLE and of
how long a batch takes; a standby instance tries to take it every third
too, so an instance that crashed is replaced within about 1.33 x
lease_seconds (40 s by default). A holder that cannot renew (the database
is away, or another instance took an expired lease) stops its session
before its lease runs out, so two pollers overlap only when clocks differ
by more than a lease; even then each mail is stored once (dedup key).

`status()` tells /healthz and /metrics how the account is doing:
connected, lease held or standby, last successful poll, last error. An
account that fails for longer than DEGRADED_AFTER (or whose login is
refused) is unhealthy.

Outcome `failed` (the mail is stored but processing failed) still counts as
taken: the message is flagged and passed, and a WARNING names the inbound id
so it can be re-run with `maildesk replay ID` (a re-fetch would only be a
duplicate of the stored mail). An exception from `ingest` itself (database
down) is not taken: nothing is flagged, the session backs off and retries.

An account with auth = "xoauth2" / "oauthbearer" logs in with an access
token (accept/oauth2.py), cached in the oauth2_token table through
DbTokenCache; a session ends by itself (and the next logs in at once) when
its token is due for renewal, since Microsoft 365 drops a session whose
token expired. A token endpoint that refuses the grant counts as a refused
login (unhealthy at once, backoff); one that cannot be reached as any
other connection error.

The wire (one aioimaplib client and the workarounds for its quirks) is
accept/imap_client.py. IDLE is left every `poll_seconds` (at most 25
minutes, under the 29-minute limit of RFC 2177) for a safety poll, because
aioimaplib drops untagged EXISTS outside IDLE/NOOP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aioimaplib import AioImapException
from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from maildesk.accept.imap_client import (
    Connection,
    Folder,
    ImapError,
    LoginFailed,
    _Stopped,
    describe,
    encode_mailbox,
    parse_bodies,
    parse_search,
    parse_sizes,
    uid_set,
)
from maildesk.accept.oauth2 import AccessToken, TokenError, TokenRefused, TokenSource
from maildesk.accept.spool import message_id_of
from maildesk.config import ImapAccountSettings
from maildesk.errors import TemporaryError
from maildesk.models import ImapState, utcnow
from maildesk.store import oauth2_tokens
from maildesk.store.oauth2_tokens import StoredToken

log = logging.getLogger(__name__)


#: Messages and bytes fetched per UID FETCH: a large mailbox is never read
#: into memory at once (one message larger than the byte budget comes alone).
BATCH_MESSAGES = 50
BATCH_BYTES = 20 * 1024 * 1024
#: Reconnect backoff: 1 s doubling up to the account's backoff_max_seconds
#: (60 s by default), each wait jittered to 50-100 %.
BACKOFF_START = 1.0
#: RFC 2177: servers may drop an IDLE after 30 minutes; re-issue well before.
IDLE_RENEW_SECONDS = 25 * 60
#: An account failing this long (without a good session in between) makes
#: /healthz degraded; a dropped connection that comes back at once does not.
DEGRADED_AFTER = timedelta(seconds=60)


class Taken(Protocol):
    """What the poller reads of a stored and processed mail
    (process/service.Outcome), so that Accept never imports Process."""

    action: str
    ticket: int | None
    inbound_id: int | None
    reason: str | None


class LeaseLost(TemporaryError):
    """Another instance holds the account's lease now."""


_RETRYABLE = (OSError, TimeoutError, AioImapException, ImapError, SQLAlchemyError, LeaseLost,
              TokenError)


class DbTokenCache:
    """accept/oauth2.TokenCache over the oauth2_token table (one short
    transaction per call, in a thread: the engine is synchronous)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def load(self, account: str) -> StoredToken | None:
        def load() -> StoredToken | None:
            with self.engine.connect() as conn:
                return oauth2_tokens.load(conn, account)
        return await asyncio.to_thread(load)

    async def save(self, account: str, token: StoredToken) -> None:
        def save() -> None:
            with self.engine.begin() as conn:
                oauth2_tokens.save(conn, account, token)
        await asyncio.to_thread(save)

    async def forget(self, account: str, access_token: str) -> None:
        def forget() -> None:
            with self.engine.begin() as conn:
                oauth2_tokens.forget_access_token(conn, account, access_token)
        await asyncio.to_thread(forget)


def batches(listing: Sequence[tuple[int, int]]) -> Iterator[list[int]]:
    """UIDs in fetch batches of at most BATCH_MESSAGES and BATCH_BYTES."""
    batch: list[int] = []
    size = 0
    for uid, length in listing:
        if batch and (len(batch) >= BATCH_MESSAGES or size + length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(uid)
        size += length
    if batch:
        yield batch


# ------------------------------------------------------------- the poller


@dataclass
class _Position:
    uidvalidity: int | None
    last_uid: int


@dataclass(frozen=True)
class AccountStatus:
    """One account as this instance sees it, for /healthz and /metrics."""

    name: str
    #: "starting", "connecting", "polling", "failing", "standby" (another
    #: instance holds the lease) or "stopped"
    state: str
    connected: bool
    lease_held: bool
    polls: int
    last_poll: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    errors: int
    healthy: bool

    @property
    def detail(self) -> str:
        """One short line (no server text beyond the error's own words)."""
        when = self.last_poll.strftime("%Y-%m-%dT%H:%M:%SZ") if self.last_poll else "never"
        text = f"{self.name} {self.state}, last poll {when}"
        if self.state in ("failing", "connecting") and self.last_error:
            text += f", last error: {self.last_error}"
        return text


def judge(state: str, failing_since: datetime | None, login_refused: bool,
          now: datetime) -> bool:
    """Healthy or not: a refused login is a config error at once; any other
    failure only once it has lasted DEGRADED_AFTER (a reconnect after a
    dropped connection is normal)."""
    if state != "failing" and state != "connecting":
        return True
    if login_refused:
        return False
    return failing_since is None or now - failing_since < DEGRADED_AFTER


def standby_retry_seconds(account: ImapAccountSettings) -> float:
    """How often the holder renews and a standby instance tries to take over."""
    return min(account.poll_seconds, account.lease_seconds / 3)


def failover_bound_seconds(account: ImapAccountSettings) -> float:
    """Longest time an account goes unpolled after its holder crashed."""
    return account.lease_seconds + standby_retry_seconds(account)


class ImapPoller:
    """Polls one account's folder until stopped; see the module docstring."""

    def __init__(self, account: ImapAccountSettings, engine: Engine,
                 ingest: Callable[[bytes], Awaitable[Taken]], instance_id: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.account = account
        self.engine = engine
        self.ingest = ingest
        self.instance_id = instance_id
        self.clock = clock
        self.lease_span = timedelta(seconds=account.lease_seconds)
        #: Completed polls (every message above last_uid taken) and when the
        #: last one finished: for health checks and tests.
        self.polls = 0
        self.last_poll: datetime | None = None
        self.state = "starting"
        self.connected = False
        self.lease_held = False
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self._failing_since: datetime | None = None
        self._login_refused = False
        self._lease_lost = False
        self._failures = 0
        self._good = False
        self._waiting_logged = False
        #: The account's access tokens (auth = "xoauth2" / "oauthbearer"),
        #: kept across sessions; None for a password login.
        self.tokens = (TokenSource(account, DbTokenCache(engine), clock=clock)
                       if account.oauth2 is not None else None)

    def status(self) -> AccountStatus:
        """A snapshot for /healthz and /metrics (cheap: no I/O)."""
        now = self.clock()
        return AccountStatus(
            name=self.account.name, state=self.state, connected=self.connected,
            lease_held=self.lease_held, polls=self.polls, last_poll=self.last_poll,
            last_error=self.last_error, last_error_at=self.last_error_at, errors=self.errors,
            healthy=judge(self.state, self._failing_since, self._login_refused, now))

    def _failed(self, error: str, login: bool = False) -> None:
        now = self.clock()
        self.state = "failing"
        self.connected = False
        self.errors += 1
        self.last_error, self.last_error_at = error, now
        self._login_refused = login
        if self._good or self._failing_since is None:
            self._failing_since = now

    @property
    def _where(self) -> str:
        a = self.account
        return f"IMAP account {a.name!r} ({a.user}@{a.host}:{a.port}, folder {a.folder!r})"

    async def run(self, stop: asyncio.Event) -> None:
        """Until stop is set: take the lease, run sessions, back off on errors.

        Never raises (but for cancellation): every failure is one log line
        naming the account and the wait before the next attempt.
        """
        a = self.account
        try:
            while not stop.is_set():
                if not await self._lease_or_wait(stop):
                    continue
                self._good = False
                try:
                    await self._held(stop)
                    if self._good:  # a session ended for a token renewal
                        self._failures = 0
                    continue  # returns when stopped, or to log in with a fresh token
                except LoginFailed as exc:
                    delay = self._next_delay()
                    self._failed(f"login refused: {exc}", login=True)
                    log.error("%s: login as %r on %s:%d failed: %s; retrying in %.1f s",
                              self._where, a.user, a.host, a.port, exc, delay)
                except TokenRefused as exc:
                    delay = self._next_delay()
                    self._failed(f"no access token: {exc}", login=True)
                    log.error("%s: no access token: %s; retrying in %.1f s", self._where, exc,
                              delay)
                except LeaseLost:
                    self.state, self.connected, self.lease_held = "standby", False, False
                    log.warning("%s: the lease passed to another instance", self._where)
                    continue  # the standby loop waits and retries
                except _RETRYABLE as exc:
                    delay = self._next_delay()
                    self._failed(describe(exc))
                    log.warning("%s: %s; reconnecting in %.1f s", self._where, describe(exc),
                                delay)
                except Exception as exc:
                    delay = self._next_delay()
                    self._failed(f"unexpected {type(exc).__name__}")
                    log.exception("%s: unexpected error; reconnecting in %.1f s", self._where,
                                  delay)
                await _sleep(stop, delay)
        finally:
            self.state, self.connected = "stopped", False
            try:
                await asyncio.to_thread(self._release_lease)
            except SQLAlchemyError as exc:
                log.warning("%s: could not release the lease: %s", self._where, describe(exc))

    def _next_delay(self) -> float:
        """The backoff before the next session: it starts over after a good one."""
        self._failures = 1 if self._good else self._failures + 1
        return backoff(self._failures, self.account.backoff_max_seconds)

    async def _lease_or_wait(self, stop: asyncio.Event) -> bool:
        try:
            if await asyncio.to_thread(self._take_lease):
                if self._waiting_logged:
                    log.info("%s: took the lease over", self._where)
                self._waiting_logged = False
                self.lease_held = True
                return True
        except SQLAlchemyError as exc:
            self._failed(f"cannot take the lease: {describe(exc)}")
            log.warning("%s: cannot take the lease: %s", self._where, describe(exc))
        else:
            self.state, self.lease_held, self.connected = "standby", False, False
            if not self._waiting_logged:
                log.info("%s: polled by another instance; waiting for its lease to end "
                         "(trying every %.0f s)", self._where, standby_retry_seconds(self.account))
                self._waiting_logged = True
        await _sleep(stop, standby_retry_seconds(self.account))
        return False

    async def _held(self, stop: asyncio.Event) -> None:
        """One session while a heartbeat keeps the lease; the session is
        halted (as by stop) when the lease cannot be kept, then LeaseLost."""
        halt = asyncio.Event()
        self._lease_lost = False
        relay = asyncio.create_task(_relay(stop, halt), name=f"imap-stop:{self.account.name}")
        heartbeat = asyncio.create_task(self._heartbeat(halt),
                                        name=f"imap-lease:{self.account.name}")
        try:
            await self._session(halt)
        finally:
            relay.cancel()
            heartbeat.cancel()
            await asyncio.gather(relay, heartbeat, return_exceptions=True)
        if self._lease_lost:
            raise LeaseLost

    async def _heartbeat(self, halt: asyncio.Event) -> None:
        """Renew the lease every third of it until halted. Lost to another
        instance, or not renewed before it would run out: halt the session."""
        every = standby_retry_seconds(self.account)
        held_until = self.clock() + self.lease_span
        while not halt.is_set():
            await _sleep(halt, every)
            if halt.is_set():
                return
            try:
                if await asyncio.to_thread(self._take_lease):
                    held_until = self.clock() + self.lease_span
                    continue
                log.warning("%s: another instance took the lease; stopping this session",
                            self._where)
            except SQLAlchemyError as exc:
                if self.clock() + timedelta(seconds=every) < held_until:
                    log.warning("%s: cannot renew the lease (%s); trying again in %.0f s",
                                self._where, describe(exc), every)
                    continue
                log.warning("%s: cannot renew the lease (%s) and it runs out; stopping this "
                            "session so that another instance may poll", self._where,
                            describe(exc))
            self._lease_lost = True
            halt.set()
            return

    async def _session(self, stop: asyncio.Event) -> None:
        account = self.account
        conn = Connection(account, stop)
        self.state = "connecting"
        token: AccessToken | None = None
        try:
            await conn.open()
            if self.tokens is not None:
                token = await conn.login_oauth2(self.tokens)
            else:
                await conn.login(account.read_password())
            folder = await conn.select(account.folder)
            position = await asyncio.to_thread(self._load_position)
            if position.uidvalidity != folder.uidvalidity:
                if position.uidvalidity is not None:
                    log.warning("%s: UIDVALIDITY changed (%s -> %s); fetching the whole folder "
                                "again (mails already taken are recognised as duplicates)",
                                self._where, position.uidvalidity, folder.uidvalidity)
                position = _Position(folder.uidvalidity, 0)
                await asyncio.to_thread(self._save_position, position)
            if account.processed_folder:
                await conn.create(account.processed_folder)
            flag = self._flag_for(folder)
            idle = account.idle and "IDLE" in conn.capabilities
            log.info("%s: connected (%s), %d messages, last UID %d, %s", self._where,
                     account.security, folder.exists, position.last_uid,
                     "waiting with IDLE" if idle else f"polling every {account.poll_seconds:g} s")
            self.state, self.connected = "polling", True
            wait = min(account.poll_seconds, IDLE_RENEW_SECONDS)
            while True:
                while await self._poll(conn, position, flag):
                    pass  # more mail may have come while we worked
                self._good = True
                self._failing_since = None
                self._login_refused = False
                self.polls += 1
                self.last_poll = self.clock()
                if stop.is_set():
                    return
                left = wait
                if token is not None:
                    left = min(wait, (token.refresh_at - self.clock()).total_seconds())
                    if left <= 0:
                        log.info("%s: the access token is due for renewal; logging in again",
                                 self._where)
                        return
                if idle:
                    await conn.idle(left)
                else:
                    await conn.call(asyncio.sleep(left))
                await conn.noop()
        except _Stopped:
            return
        finally:
            self.connected = False
            await conn.close()

    def _flag_for(self, folder: Folder) -> str | None:
        """The flag that marks a processed message, or None when the folder
        keeps no flags at all (then only last_uid marks progress)."""
        if self.account.processed_folder:
            return None
        if folder.read_only:
            log.warning("%s: the folder is read-only; messages are not flagged", self._where)
            return None
        if folder.allows(self.account.processed_flag):
            return self.account.processed_flag
        if folder.allows("\\Seen"):
            log.warning("%s: the server keeps no keyword %s; marking processed mail \\Seen",
                        self._where, self.account.processed_flag)
            return "\\Seen"
        log.warning("%s: the server keeps no flags; messages are not flagged", self._where)
        return None

    async def _poll(self, conn: Connection, position: _Position, flag: str | None) -> int:
        """Fetch and take every message above last_uid; returns how many.

        UID SEARCH lists the new UIDs (one line); sizes and bodies are then
        fetched per BATCH_MESSAGES (aioimaplib re-scans a FETCH answer per
        line, so one FETCH over a whole large mailbox would be quadratic).
        """
        response = await conn.uid_search(f"UID {position.last_uid + 1}:*")
        # `n:*` always matches the highest message, even below n (RFC 3501).
        uids = sorted(u for u in parse_search(response.lines) if u > position.last_uid)
        taken = 0
        for start in range(0, len(uids), BATCH_MESSAGES):
            chunk = uids[start:start + BATCH_MESSAGES]
            response = await conn.uid("fetch", uid_set(chunk), "(UID RFC822.SIZE)")
            for batch in batches(sorted(parse_sizes(response.lines))):
                taken += await self._take_batch(conn, batch, position, flag)
                if conn.stop.is_set():
                    return taken
        return taken

    async def _take_batch(self, conn: Connection, batch: list[int], position: _Position,
                          flag: str | None) -> int:
        """Ingest a batch in UID order; flag/move and record what was taken,
        also when an ingest fails or stop is set half-way."""
        response = await conn.uid("fetch", uid_set(batch), "(UID BODY.PEEK[])")
        bodies = parse_bodies(response.lines)
        done: list[int] = []
        try:
            for uid in batch:
                if conn.stop.is_set():
                    break
                raw = bodies.get(uid)
                if raw is not None:  # None: expunged meanwhile by someone else
                    await self._take(uid, raw)
                done.append(uid)
        finally:
            if done:
                await self._mark_done(conn, done, flag)
                position.last_uid = max(done)
                await asyncio.to_thread(self._save_position, position)
        return len(done)

    async def _take(self, uid: int, raw: bytes) -> None:
        message_id = message_id_of(raw)
        try:
            outcome = await self.ingest(raw)
        except Exception:
            log.error("%s: UID %d could not be stored; it stays on the server", self._where,
                      uid, extra={"message_id": message_id, "source": "imap"})
            raise
        extra = {"message_id": message_id, "ticket": outcome.ticket,
                 "inbound_id": outcome.inbound_id, "source": "imap"}
        if outcome.action == "failed":
            log.warning("%s: UID %d stored as inbound mail %s but processing failed (%s); "
                        "run `maildesk replay %s`", self._where, uid, outcome.inbound_id,
                        outcome.reason, outcome.inbound_id, extra=extra)
        else:
            log.info("%s: UID %d -> %s", self._where, uid, outcome.action, extra=extra)

    async def _mark_done(self, conn: Connection, uids: list[int], flag: str | None) -> None:
        targets = uid_set(uids)
        folder = self.account.processed_folder
        if folder:
            name = encode_mailbox(folder)
            if "MOVE" in conn.capabilities:
                await conn.uid("move", targets, name, interruptible=False)
                return
            await conn.uid("copy", targets, name, interruptible=False)
            await conn.uid("store", targets, "+FLAGS.SILENT", "(\\Deleted)", interruptible=False)
            if "UIDPLUS" in conn.capabilities:
                await conn.uid("expunge", targets, interruptible=False)
            else:
                await conn.expunge()
        elif flag:
            await conn.uid("store", targets, "+FLAGS.SILENT", f"({flag})", interruptible=False)

    # ------------------------------------------------------------ the state

    def _take_lease(self) -> bool:
        """Take or renew the account's lease; False while another instance holds it."""
        table = ImapState.__table__
        now = self.clock()
        values = {"lease_owner": self.instance_id, "lease_until": now + self.lease_span,
                  "updated_at": now}
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(table)
                .where(table.c.account == self.account.name,
                       or_(table.c.lease_owner.is_(None),
                           table.c.lease_owner == self.instance_id,
                           table.c.lease_until.is_(None),
                           table.c.lease_until < now))
                .values(**values)
            ).rowcount
            if taken:
                return True
            if conn.execute(select(table.c.account)
                            .where(table.c.account == self.account.name)).first():
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(table).values(account=self.account.name, last_uid=0,
                                                  **values))
        except IntegrityError:  # another instance inserted it first
            return False
        return True

    def _release_lease(self) -> None:
        table = ImapState.__table__
        with self.engine.begin() as conn:
            conn.execute(update(table)
                         .where(table.c.account == self.account.name,
                                table.c.lease_owner == self.instance_id)
                         .values(lease_owner=None, lease_until=None, updated_at=self.clock()))

    def _load_position(self) -> _Position:
        table = ImapState.__table__
        with self.engine.connect() as conn:
            row = conn.execute(select(table.c.uidvalidity, table.c.last_uid)
                               .where(table.c.account == self.account.name)).first()
        return _Position(row.uidvalidity, row.last_uid) if row else _Position(None, 0)

    def _save_position(self, position: _Position) -> None:
        """Store where we stand; only while we hold the lease."""
        table = ImapState.__table__
        with self.engine.begin() as conn:
            saved = conn.execute(
                update(table)
                .where(table.c.account == self.account.name,
                       table.c.lease_owner == self.instance_id)
                .values(uidvalidity=position.uidvalidity, last_uid=position.last_uid,
                        updated_at=self.clock())
            ).rowcount
        if not saved:
            raise LeaseLost


def backoff(failures: int, cap: float = 60.0) -> float:
    """Seconds to wait after `failures` failed sessions in a row (>= 1).

    Capped at `cap` (imap.backoff_max_seconds): an unbounded doubling would
    leave a mailbox that came back unpolled for many minutes.
    """
    base = min(cap, BACKOFF_START * 2 ** max(0, min(failures - 1, 60)))
    return base * random.uniform(0.5, 1.0)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _relay(stop: asyncio.Event, halt: asyncio.Event) -> None:
    """Set halt once stop is set (a session watches one event)."""
    await stop.wait()
    halt.set()
