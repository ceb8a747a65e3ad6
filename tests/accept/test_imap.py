"""The IMAP poller against a real Dovecot (tests/dovecot.py).

In CI (CI=true) a missing dovecot fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from maildesk.accept import imap
from maildesk.accept.imap import (
    ImapPoller,
    LeaseLost,
    batches,
    encode_mailbox,
    parse_bodies,
    parse_search,
    uid_set,
)
from maildesk.accept.imap_client import check_account
from maildesk.accept.spool import Incoming
from maildesk.config import ImapAccountSettings
from maildesk.models import ImapState, InboundMail, Ticket, utcnow
from maildesk.process.service import MailProcessor, Outcome
from tests.conftest import Desk
from tests.dovecot import (
    Dovecot,
    ImapUser,
    Proxy,
    dovecot_for_tests,
    free_port,
)
from tests.mailfactory import make_mail

FLAG = "$MaildeskProcessed"
LOGGER = "maildesk.accept.imap"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with dovecot_for_tests() as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> ImapUser:
    return dovecot.add_user()


class Ingest:
    """The daemon's ingest callable (MailProcessor in a thread), counting calls."""

    def __init__(self, desk: Desk, engine: Engine) -> None:
        self.ingestor = MailProcessor(desk.settings, engine)
        self.outcomes: list[Outcome] = []

    async def __call__(self, raw: bytes) -> Outcome:
        outcome = await asyncio.to_thread(self.ingestor.ingest, Incoming(raw, "imap"))
        self.outcomes.append(outcome)
        return outcome

    @property
    def actions(self) -> list[str]:
        return [o.action for o in self.outcomes]


@pytest.fixture
def engine(desk: Desk) -> Iterator[Engine]:
    engine = desk.engine()
    yield engine
    engine.dispose()


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def state(engine: Engine, account: ImapAccountSettings) -> Any:
    table = ImapState.__table__
    with engine.connect() as conn:
        return conn.execute(select(table).where(table.c.account == account.name)).first()


def subjects(engine: Engine) -> list[str]:
    table = Ticket.__table__
    with engine.connect() as conn:
        return sorted(conn.execute(select(table.c.subject)).scalars())


async def eventually(condition: Callable[[], Any], timeout: float = 10, what: str = "") -> float:
    """Wait until condition() (run in a thread) is true; returns the seconds it took."""
    start = time.monotonic()
    while not await asyncio.to_thread(condition):
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@asynccontextmanager
async def running(poller: ImapPoller) -> AsyncIterator[dict[str, float]]:
    """Run the poller; on leaving, stop it and record how long stopping took."""
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    timing: dict[str, float] = {}
    try:
        yield timing
    finally:
        stop.set()
        begin = time.monotonic()
        await asyncio.wait_for(task, 5)  # re-raises whatever run() raised
        timing["stop"] = time.monotonic() - begin


def mails(n: int, tag: str = "") -> list[bytes]:
    return [make_mail(subject=f"Anfrage {tag}{i}", sender=f"Kunde {i} <kunde{i}@firma{i}.de>",
                      body=f"Hallo,\n\nFrage Nummer {i}.\n" + "Text (mit Klammern) " * 40)
            for i in range(1, n + 1)]


def poller(account: ImapAccountSettings, engine: Engine,
           ingest: Callable[[bytes], Awaitable[Outcome]], instance: str = "test-1") -> ImapPoller:
    return ImapPoller(account, engine, ingest, instance)


# ------------------------------------------------------------ pure helpers


def test_uid_set_compresses_ranges() -> None:
    assert uid_set([3, 1, 2, 7, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"


def test_batches_bound_count_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap, "BATCH_MESSAGES", 3)
    monkeypatch.setattr(imap, "BATCH_BYTES", 100)
    listing = [(1, 10), (2, 10), (3, 10), (4, 10), (5, 95), (6, 500), (7, 1)]
    assert list(batches(listing)) == [[1, 2, 3], [4], [5], [6], [7]]


def test_mailbox_names_are_quoted_modified_utf7() -> None:
    # RFC 3501 §5.1.3's example.
    assert encode_mailbox("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert encode_mailbox('A&B "x"') == '"A&-B \\"x\\""'


def test_search_answers_are_parsed() -> None:
    assert parse_search([b"1 2 10", b"Search completed (0.001 + 0.000 secs)."]) == [1, 2, 10]
    assert parse_search([b"SEARCH 4", b"Search completed."]) == [4]
    assert parse_search([b"", b"Search completed."]) == []


def test_fetch_bodies_are_parsed_with_uid_before_or_after_the_literal() -> None:
    lines = [b"1 FETCH (UID 7 BODY[] {5}", bytearray(b"a (b)"), b")",
             b"2 FETCH (FLAGS (\\Seen))",
             b"3 FETCH (BODY[] {2}", bytearray(b"xy"), b" UID 9)", b"Fetch completed."]
    assert parse_bodies(lines) == {7: b"a (b)", 9: b"xy"}


# --------------------------------------------------------- against Dovecot


async def test_new_mails_become_tickets_and_are_flagged(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    dovecot.append(user, *mails(3))
    account = dovecot.account(user)
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = poller(account, engine, ingest)
        async with running(p) as timing:
            await eventually(lambda: p.polls >= 1, what="a first poll")
    assert ingest.actions == ["created"] * 3
    assert subjects(engine) == ["Anfrage 1", "Anfrage 2", "Anfrage 3"]
    flags = dovecot.flags(user)
    assert sorted(flags) == [1, 2, 3]
    assert all(FLAG in f and "\\Seen" not in f for f in flags.values()), flags
    row = state(engine, account)
    assert row.last_uid == 3 and row.uidvalidity
    assert row.lease_owner is None  # released on stop
    assert timing["stop"] < 1.5
    taken = [r for r in caplog.records if r.name == LOGGER and " -> " in r.getMessage()]
    assert len(taken) == 3
    assert all(r.message_id.startswith("test-") and r.ticket for r in taken)


async def test_second_run_fetches_nothing_and_creates_nothing(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine) -> None:
    dovecot.append(user, *mails(2))
    account = dovecot.account(user)
    async with asyncio.timeout(20):
        first = Ingest(desk, engine)
        p = poller(account, engine, first)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
        assert first.actions == ["created", "created"]
        second = Ingest(desk, engine)
        p = poller(account, engine, second, "test-2")
        async with running(p):
            await eventually(lambda: p.polls >= 1)
            await asyncio.sleep(0.3)
        assert second.outcomes == []
        dovecot.append(user, make_mail(subject="Noch eine Frage"))
        p = poller(account, engine, second)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
    assert second.actions == ["created"]
    assert count(engine, Ticket.__table__) == 3
    assert count(engine, InboundMail.__table__) == 3
    assert state(engine, account).last_uid == 3


def _expand(uids: str) -> list[int]:
    found: list[int] = []
    for part in uids.split(","):
        low, _, high = part.partition(":")
        found += range(int(low), int(high or low) + 1)
    return found


async def test_a_large_folder_is_fetched_in_batches(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap, "BATCH_MESSAGES", 7)
    monkeypatch.setattr(imap, "BATCH_BYTES", 5000)  # a test mail is about 1.5 KB
    dovecot.append(user, *mails(30))
    proxy = await Proxy(dovecot.port).start()
    account = dovecot.account(user, port=proxy.port)
    ingest = Ingest(desk, engine)
    try:
        async with asyncio.timeout(30):
            p = poller(account, engine, ingest)
            async with running(p):
                await eventually(lambda: p.polls >= 1, timeout=25)
    finally:
        await proxy.close()
    assert ingest.actions == ["created"] * 30
    fetched = [_expand(line.split()[3]) for line in bytes(proxy.sent).decode().splitlines()
               if "UID FETCH" in line and "BODY.PEEK[]" in line]
    assert sorted(u for batch in fetched for u in batch) == list(range(1, 31))
    # Seven UIDs per size listing; 5000 bytes cut each into smaller body fetches.
    assert all(1 <= len(batch) <= 4 for batch in fetched), fetched
    assert len(fetched) > 30 / 7 + 1, fetched
    assert state(engine, account).last_uid == 30


async def test_processed_folder_gets_the_mails_moved(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine) -> None:
    dovecot.append(user, *mails(2))
    account = dovecot.account(user, processed_folder="Erledigt")
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = poller(account, engine, ingest)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
    assert ingest.actions == ["created", "created"]
    assert dovecot.flags(user) == {}
    assert len(dovecot.flags(user, "Erledigt")) == 2
    assert len(dovecot.files(user, "Erledigt")) == 2 and dovecot.files(user) == []
    assert state(engine, account).last_uid == 2


@pytest.mark.parametrize("strip", [(b" MOVE",), (b" MOVE", b" UIDPLUS")],
                         ids=["copy+uid-expunge", "copy+expunge"])
async def test_without_move_the_poller_copies_deletes_and_expunges(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        strip: tuple[bytes, ...]) -> None:
    dovecot.append(user, *mails(2))
    proxy = await Proxy(dovecot.port, strip=strip).start()
    account = dovecot.account(user, port=proxy.port, processed_folder="Erledigt")
    ingest = Ingest(desk, engine)
    try:
        async with asyncio.timeout(20):
            p = poller(account, engine, ingest)
            async with running(p):
                await eventually(lambda: p.polls >= 1)
    finally:
        await proxy.close()
    assert ingest.actions == ["created", "created"]
    assert dovecot.flags(user) == {}
    assert len(dovecot.flags(user, "Erledigt")) == 2
    sent = bytes(proxy.sent)
    assert b"UID MOVE" not in sent and b"UID COPY" in sent
    assert (b"UID EXPUNGE" in sent) == (b" UIDPLUS" not in strip)
    assert len(dovecot.files(user, "Erledigt")) == 2 and dovecot.files(user) == []


async def test_uidvalidity_change_refetches_but_makes_no_duplicate(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    old = mails(2)
    dovecot.append(user, *old, folder="Support")
    account = dovecot.account(user, folder="Support")
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = poller(account, engine, ingest)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
        before = state(engine, account).uidvalidity
        with dovecot.client(user) as client:
            assert client.delete("Support")[0] == "OK"
        dovecot.append(user, *old, make_mail(subject="Neu nach dem Umbau"), folder="Support")
        p = poller(account, engine, ingest)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
    assert state(engine, account).uidvalidity != before
    assert ingest.actions == ["created", "created", "duplicate", "duplicate", "created"]
    assert count(engine, Ticket.__table__) == 3
    assert all(FLAG in f for f in dovecot.flags(user, "Support").values())
    assert any("UIDVALIDITY changed" in r.getMessage() for r in caplog.records)


async def test_connection_cut_mid_fetch_loses_nothing_and_duplicates_nothing(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(imap, "BATCH_MESSAGES", 1)
    dovecot.append(user, *mails(3))
    # The second body fetch is cut 400 bytes into its answer (mid-literal).
    proxy = await Proxy(dovecot.port, cut_fetch_after=400, cut_fetch_number=2).start()
    account = dovecot.account(user, port=proxy.port)
    ingest = Ingest(desk, engine)
    try:
        async with asyncio.timeout(20):
            p = poller(account, engine, ingest)
            async with running(p):
                await eventually(lambda: p.polls >= 1)
    finally:
        await proxy.close()
    assert proxy.cut_done == 1 and proxy.connections == 2
    assert ingest.actions == ["created"] * 3
    assert subjects(engine) == ["Anfrage 1", "Anfrage 2", "Anfrage 3"]
    assert count(engine, InboundMail.__table__) == 3
    assert all(FLAG in f for f in dovecot.flags(user).values())
    assert state(engine, account).last_uid == 3
    assert any(r.levelno == logging.WARNING and "closed the connection" in r.getMessage()
               for r in caplog.records)


async def test_connection_cut_before_flagging_refetches_as_duplicate(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine) -> None:
    dovecot.append(user, *mails(2))
    # The STORE that would flag the stored mails never reaches the server.
    proxy = await Proxy(dovecot.port, cut_command=b"UID STORE").start()
    account = dovecot.account(user, port=proxy.port)
    ingest = Ingest(desk, engine)
    try:
        async with asyncio.timeout(20):
            p = poller(account, engine, ingest)
            async with running(p):
                await eventually(lambda: p.polls >= 1)
    finally:
        await proxy.close()
    assert proxy.cut_done == 1
    assert ingest.actions == ["created", "created", "duplicate", "duplicate"]
    assert count(engine, Ticket.__table__) == 2
    assert all(FLAG in f for f in dovecot.flags(user).values())


async def test_wrong_password_logs_an_error_and_retries_with_backoff(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(imap, "BACKOFF_START", 0.2)
    proxy = await Proxy(dovecot.port).start()  # to see when each attempt begins
    account = dovecot.account(user, port=proxy.port, password="falsches-Passwort")
    ingest = Ingest(desk, engine)

    def errors() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]

    try:
        async with asyncio.timeout(20):
            p = poller(account, engine, ingest)
            async with running(p) as timing:
                await eventually(lambda: len(errors()) >= 4, what="four login attempts")
    finally:
        await proxy.close()
    assert timing["stop"] < 1
    first = errors()[0].getMessage()
    assert account.name in first and user.name in first and "127.0.0.1" in first
    assert "AUTHENTICATIONFAILED" in first
    assert all("falsches-Passwort" not in r.getMessage() for r in caplog.records)
    # The wait from a failure to the next attempt: 0.2 s doubling, jittered to 50-100 %.
    waits = [attempt - error.created
             for error, attempt in zip(errors()[:3], proxy.connected_at[1:4], strict=True)]
    for i, wait in enumerate(waits):
        assert 0.2 * 2 ** i * 0.5 - 0.02 <= wait <= 0.2 * 2 ** i + 0.5, waits
    assert ingest.outcomes == [] and p.polls == 0


def test_backoff_doubles_from_one_second_to_the_60_second_default_cap_with_jitter() -> None:
    for failures in range(1, 15):
        base = min(60, 2 ** (failures - 1))
        waits = [imap.backoff(failures) for _ in range(50)]
        assert all(base * 0.5 <= w <= base for w in waits)
        assert len(set(waits)) > 1
    assert max(imap.backoff(10_000) for _ in range(50)) <= 60


def test_backoff_cap_is_the_accounts_backoff_max_seconds() -> None:
    account = ImapAccountSettings(name="a", host="h", user="u")
    assert account.backoff_max_seconds == 60
    waits = [imap.backoff(20, 5) for _ in range(50)]
    assert all(2.5 <= w <= 5 for w in waits)
    assert all(120 <= imap.backoff(20, 240) <= 240 for _ in range(50))


async def test_idle_takes_a_new_mail_within_seconds_and_stops_promptly(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine) -> None:
    # poll_seconds is long: only IDLE can bring the mail in this fast.
    account = dovecot.account(user, poll_seconds=60)
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = poller(account, engine, ingest)
        async with running(p) as timing:
            await eventually(lambda: p.polls >= 1)
            await asyncio.sleep(0.3)  # now in IDLE
            await asyncio.to_thread(dovecot.append, user, make_mail(subject="Per IDLE"))
            took = await eventually(lambda: len(ingest.outcomes) == 1, timeout=5)
            await eventually(lambda: p.polls >= 2)
            await asyncio.sleep(0.3)  # back in IDLE
    assert took < 3
    assert timing["stop"] < 1
    assert ingest.actions == ["created"]
    assert FLAG in dovecot.flags(user)[1]


async def test_without_idle_it_polls_every_poll_seconds(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine) -> None:
    account = dovecot.account(user, idle=False, poll_seconds=0.5)
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = poller(account, engine, ingest)
        async with running(p) as timing:
            await eventually(lambda: p.polls >= 3, timeout=5)
            await asyncio.to_thread(dovecot.append, user, make_mail(subject="Per Poll"))
            took = await eventually(lambda: len(ingest.outcomes) == 1, timeout=5)
    assert took < 2
    assert timing["stop"] < 1
    assert ingest.actions == ["created"]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        monkeypatch: pytest.MonkeyPatch, security: str) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))  # trust the test certificate
    dovecot.append(user, make_mail(subject="Verschlüsselt"))
    port = dovecot.tls_port if security == "tls" else dovecot.port
    account = dovecot.account(user, security=security, port=port)
    ingest = Ingest(desk, engine)
    async with asyncio.timeout(20):
        p = poller(account, engine, ingest)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
    assert ingest.actions == ["created"]
    logins = [line for line in dovecot.log.splitlines()
              if "Login:" in line and f"user=<{user.name}>" in line]
    # The test's own client (append) logs in plain; the poller's login is the TLS one.
    assert any(", TLS," in line for line in logins), logins


async def test_failed_outcome_is_taken_with_a_warning_and_an_exception_is_not(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(imap, "BACKOFF_START", 0.1)
    dovecot.append(user, make_mail(subject="Kaputt"))
    account = dovecot.account(user)
    calls: list[bytes] = []

    async def broken(raw: bytes) -> Outcome:
        calls.append(raw)
        raise RuntimeError("database gone")

    async with asyncio.timeout(20):
        p = poller(account, engine, broken)
        async with running(p):
            await eventually(lambda: len(calls) >= 2, what="a retry after the error")
        assert FLAG not in dovecot.flags(user)[1]
        assert state(engine, account).last_uid == 0

        async def failing(raw: bytes) -> Outcome:
            return Outcome("failed", reason="parser exploded", inbound_id=4711)

        p = poller(account, engine, failing)
        async with running(p):
            await eventually(lambda: p.polls >= 1)
    assert FLAG in dovecot.flags(user)[1]
    assert state(engine, account).last_uid == 1
    warning = [r for r in caplog.records if r.levelno == logging.WARNING and "4711" in
               r.getMessage()]
    assert warning and "replay 4711" in warning[0].getMessage()
    assert warning[0].message_id.startswith("test-")


async def test_two_instances_never_poll_one_account_at_once(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine) -> None:
    proxy_a = await Proxy(dovecot.port).start()
    proxy_b = await Proxy(dovecot.port).start()
    account = dovecot.account(user, poll_seconds=0.3)
    ingest = Ingest(desk, engine)
    a = poller(account.model_copy(update={"port": proxy_a.port}), engine, ingest, "host-a")
    b = poller(account.model_copy(update={"port": proxy_b.port}), engine, ingest, "host-b")
    try:
        async with asyncio.timeout(20):
            async with running(a):
                await eventually(lambda: a.polls >= 1)
                async with running(b):
                    await asyncio.sleep(1)  # b retries the lease every 0.3 s
                    assert proxy_b.connections == 0
                    assert state(engine, account).lease_owner == "host-a"
                    await asyncio.to_thread(dovecot.append, user, make_mail(subject="Eins"))
                    await eventually(lambda: len(ingest.outcomes) == 1)
                    stop_a = asyncio.get_running_loop().time()
            # a stopped and released the lease; b takes over.
            async with running(b):
                await eventually(lambda: b.polls >= 1)
                assert asyncio.get_running_loop().time() - stop_a < 5
                await asyncio.to_thread(dovecot.append, user, make_mail(subject="Zwei"))
                await eventually(lambda: len(ingest.outcomes) == 2)
                assert state(engine, account).lease_owner == "host-b"
    finally:
        await proxy_a.close()
        await proxy_b.close()
    assert ingest.actions == ["created", "created"]
    assert proxy_b.connections >= 1


def test_an_expired_lease_can_be_taken_over(desk: Desk, engine: Engine) -> None:
    account = ImapAccountSettings(name="lease", host="127.0.0.1", user="u", poll_seconds=60)

    async def unused(raw: bytes) -> Outcome:
        raise AssertionError

    now = utcnow()
    a = ImapPoller(account, engine, unused, "a", clock=lambda: now)
    b = ImapPoller(account, engine, unused, "b", clock=lambda: now + timedelta(seconds=25))
    late = ImapPoller(account, engine, unused, "b", clock=lambda: now + timedelta(seconds=31))
    assert a._take_lease() and a._take_lease()  # taken, renewed
    assert not b._take_lease()  # a's lease lasts 30 seconds
    assert late._take_lease()
    with pytest.raises(LeaseLost):
        a._save_position(imap._Position(1, 10))
    assert state(engine, account).lease_owner == "b"


def test_a_crashed_holder_is_replaced_within_a_minute_by_default() -> None:
    account = ImapAccountSettings(name="x", host="h", user="u")  # the defaults
    assert account.lease_seconds == 30
    assert imap.failover_bound_seconds(account) == 40 < 60
    # A short poll interval makes the standby retry more often, never less.
    fast = account.model_copy(update={"poll_seconds": 2})
    assert imap.standby_retry_seconds(fast) == 2


def test_health_judgement_forgives_a_reconnect_but_not_a_dead_account() -> None:
    now = utcnow()
    judge = imap.judge
    assert judge("polling", None, False, now) and judge("standby", None, False, now)
    assert judge("failing", now - timedelta(seconds=5), False, now)  # a dropped connection
    assert not judge("failing", now - timedelta(seconds=61), False, now)
    assert not judge("connecting", now - timedelta(seconds=61), False, now)
    assert not judge("failing", now, True, now)  # a refused login is a config error at once


async def test_a_session_stops_when_another_instance_took_the_lease(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    """The heartbeat, not the IDLE loop, notices: the IDLE wait here is a minute."""
    proxy = await Proxy(dovecot.port).start()
    account = dovecot.account(user, port=proxy.port, poll_seconds=60, lease_seconds=3)
    ingest = Ingest(desk, engine)
    p = poller(account, engine, ingest, "host-a")
    table = ImapState.__table__
    try:
        async with asyncio.timeout(20), running(p):
            await eventually(lambda: p.polls >= 1)
            assert p.status().state == "polling" and p.status().lease_held
            with engine.begin() as conn:  # as if another instance took an expired lease
                conn.execute(table.update().where(table.c.account == account.name).values(
                    lease_owner="host-b", lease_until=utcnow() + timedelta(hours=1)))
            took = await eventually(lambda: p.status().state == "standby", timeout=5)
            assert not p.status().connected and not p.status().lease_held
            assert p.status().healthy
            await asyncio.to_thread(dovecot.append, user, make_mail(subject="Nicht meins"))
            await asyncio.sleep(1.5)
    finally:
        await proxy.close()
    assert took < 2.5  # renewal every lease/3 = 1 s
    assert proxy.connections == 1 and ingest.outcomes == []  # host-b's mail now
    assert state(engine, account).lease_owner == "host-b"
    assert any("another instance took the lease" in r.getMessage() for r in caplog.records)


async def test_status_shows_a_refused_login_at_once_and_a_dead_server_after_a_while(
        dovecot: Dovecot, user: ImapUser, desk: Desk, engine: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap, "BACKOFF_START", 0.1)
    monkeypatch.setattr(imap, "DEGRADED_AFTER", timedelta(seconds=1))
    ingest = Ingest(desk, engine)
    refused = poller(dovecot.account(user, password="falsch"), engine, ingest, "a")
    dead = poller(dovecot.account(dovecot.add_user(), port=free_port()), engine, ingest, "a")
    async with asyncio.timeout(20), running(refused), running(dead):
        await eventually(lambda: refused.errors >= 1 and dead.errors >= 1)
        login = refused.status()
        assert not login.healthy and login.state == "failing" and login.lease_held
        assert "login refused" in (login.last_error or "")
        assert "AUTHENTICATIONFAILED" in login.detail and "falsch" not in login.detail
        early = dead.status()
        assert early.healthy and not early.connected and early.last_error
        await eventually(lambda: not dead.status().healthy, timeout=5)
        assert dead.status().last_poll is None
    assert refused.status().state == "stopped"


async def test_check_account(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    user = dovecot.add_user()
    dovecot.append(user, *mails(2))
    async with asyncio.timeout(30):
        ok, text = await check_account(dovecot.account(user), timeout=5)
        assert ok, text
        assert "2 messages" in text and "IDLE yes" in text

        ok, text = await check_account(dovecot.account(user, password="nope"), timeout=5)
        assert not ok and "login failed" in text and "nope" not in text, text

        tls = dovecot.account(user, security="tls", port=dovecot.tls_port)
        ok, text = await check_account(tls, timeout=5)
        assert not ok and "certificate" in text.lower(), text
        monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
        ok, text = await check_account(tls, timeout=5)
        assert ok, text

        ok, text = await check_account(dovecot.account(user, folder="Gibt-es-nicht"), timeout=5)
        assert not ok and "SELECT" in text, text

        closed = dovecot.account(user, port=1)
        ok, text = await check_account(closed, timeout=5)
        assert not ok and "cannot connect" in text, text

        # A plain client on the TLS port waits for a greeting that never comes.
        began = time.monotonic()
        ok, text = await check_account(dovecot.account(user, port=dovecot.tls_port), timeout=1)
        assert not ok and time.monotonic() - began < 3, text
