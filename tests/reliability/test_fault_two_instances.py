"""Two `maildesk serve` on one PostgreSQL and one Redis, as two MX would
run them, with one `maildesk worker`; a fifth of the mails reaches both
instances at once (a sender's MTA retrying at the second MX after a lost
250); one instance is killed with SIGKILL mid-run and started again.

What must hold (issue #12): every mail that got a 250 is exactly one
ticket, nothing is left pending or failed, every notification reaches the
relay exactly once (counted by Message-ID), neither instance logged a
deadlock, and nobody got a 451 except from the instance that was down.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from maildesk import db
from maildesk.models import InboundMail, Message, Outbox, Ticket
from tests.daemon_helpers import ServeProcess, start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink
from tests.reliability.services import Mta, make_desk, start_worker

MAILS = 1000
BOTH_EVERY = 5  # every fifth mail goes to both instances: 20 %
CLIENTS = 6
KILL_AFTER = 300  # 250s before instance B is killed
DOWN_SECONDS = 3


@dataclass
class Traffic:
    """Where each instance listens now, and what the senders saw."""

    ports: dict[str, int]
    down: set[str] = field(default_factory=set)
    #: (instance, code, monotonic time) of every 4xx / broken connection
    refusals: list[tuple[str, int, float]] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, instance: str, sender: str, raw: bytes, message_id: str) -> None:
        """Like a sending MTA: retry until 250; while this MX is down, the
        other one takes it (the second MX record)."""
        deadline = time.monotonic() + 120
        target = instance
        while True:
            code = Mta(self.ports[target], timeout=30).try_once(sender, raw, message_id)
            if code == 250:
                with self.lock:
                    self.delivered.add(message_id)
                return
            with self.lock:
                self.refusals.append((target, code, time.monotonic()))
            if time.monotonic() > deadline:
                raise AssertionError(f"{message_id} not taken within 120 s")
            target = "a" if target == "b" else "b"
            time.sleep(0.2)


def _mails() -> list[tuple[str, str, bytes, list[str]]]:
    """(sender, message id, raw, instances): each a new customer's first mail."""
    out = []
    for n in range(MAILS):
        sender = f"kunde{n}@firma{n % 37}.de"
        message_id = f"two-{n}@firma{n % 37}.de"
        raw = make_mail(subject=f"Anfrage {n}", sender=sender, message_id=f"<{message_id}>",
                        body=f"Hallo,\n\nAnliegen Nummer {n}.\n")
        instances = ["a", "b"] if n % BOTH_EVERY == 0 else ["a" if n % 2 else "b"]
        out.append((sender, message_id, raw, instances))
    return out


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_instances_one_killed_lose_and_double_nothing(
        database_url: str, redis_url: str, sink: Sink, tmp_path: Path, reaper: list) -> None:
    desk = make_desk(tmp_path, tmp_path / "var-a", database_url,
                     MAILDESK_RELAY__HOST="127.0.0.1", MAILDESK_RELAY__PORT=str(sink.port),
                     MAILDESK_BROKER__URL=redis_url, MAILDESK_WORKER__THREADS="8",
                     MAILDESK_LOOPS__RATE_LIMIT_COUNT="100000",
                     MAILDESK_NOTIFY__AUTO_LIMIT_COUNT="100000")
    env_b = {**desk.env, "MAILDESK_DATA_DIR": str(tmp_path / "var-b")}
    worker = start_worker(desk.env, tmp_path / "worker.log")
    reaper.append(worker)
    serves: dict[str, list[ServeProcess]] = {
        "a": [start_serve(desk.env, tmp_path)], "b": [start_serve(env_b, tmp_path)]}
    for started in serves.values():
        reaper.append(started[0].process)
    traffic = Traffic({name: s[0].port for name, s in serves.items()})

    jobs: queue.Queue[tuple[str, str, bytes, str] | None] = queue.Queue()
    for sender, message_id, raw, instances in _mails():
        for instance in instances:  # adjacent jobs: two threads send them at once
            jobs.put((sender, message_id, raw, instance))
    errors: list[BaseException] = []

    def client() -> None:
        while (job := jobs.get()) is not None:
            sender, message_id, raw, instance = job
            try:
                traffic.deliver(instance, sender, raw, message_id)
            except BaseException as exc:  # noqa: BLE001 — reported by the test thread
                errors.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(traffic.delivered) >= KILL_AFTER or errors, timeout=120)
    killed_at = time.monotonic()
    serves["b"][0].process.send_signal(signal.SIGKILL)  # its processor dies with it
    serves["b"][0].process.wait(timeout=10)
    time.sleep(DOWN_SECONDS)
    again = start_serve(env_b, tmp_path)
    reaper.append(again.process)
    serves["b"].append(again)
    traffic.ports["b"] = again.port
    back_at = time.monotonic()
    assert len(traffic.delivered) < MAILS - 200, "the kill was not mid-run"
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors[:3]

    engine = db.make_engine(database_url)

    def settled() -> bool:
        with engine.connect() as conn:
            open_rows = conn.execute(select(func.count()).select_from(InboundMail).where(
                InboundMail.state == "pending")).scalar_one()
            unsent = conn.execute(select(func.count()).select_from(Outbox).where(
                Outbox.state.in_(["queued", "sending"]))).scalar_one()
        return open_rows == 0 and unsent == 0

    wait_until(settled, timeout=120, step=0.5)
    assert len(traffic.delivered) == MAILS

    with engine.connect() as conn:
        messages = Counter(conn.execute(select(Message.message_id)).scalars())
        tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar_one()
        inbound = Counter(conn.execute(select(InboundMail.state)).scalars())
        outbox = dict(conn.execute(select(Outbox.message_id, Outbox.state)).all())
    engine.dispose()
    # every mail that got a 250: exactly one ticket, exactly one message
    assert tickets == MAILS
    assert all(messages[m] == 1 for m in traffic.delivered), \
        [m for m in traffic.delivered if messages[m] != 1][:5]
    assert set(inbound) == {"done"}, inbound
    # every notification sent, each exactly once at the relay
    assert set(outbox.values()) == {"sent"}
    wait_until(lambda: len(sink.received) >= len(outbox), timeout=30)
    time.sleep(0.5)  # a duplicate would arrive now
    at_sink = Counter(str(r.message["Message-ID"]).strip("<>") for r in sink.received)
    assert set(at_sink) == set(outbox), "sent rows and mails at the relay differ"
    assert max(at_sink.values()) == 1, [m for m, n in at_sink.items() if n > 1][:5]

    # nobody got a 451 or a broken connection except from B while it was down
    # (connections B had open when it died break; the restart needs its start time)
    assert any(who == "b" and killed_at - 1 <= at <= back_at + 1
               for who, _, at in traffic.refusals), "nobody noticed B was down"
    wrong = [(who, code) for who, code, at in traffic.refusals
             if who == "a" or not killed_at - 1 <= at <= back_at + 1]
    assert not wrong, wrong[:10]
    for name, started in serves.items():
        for serve in started:
            if serve.process.poll() is None:
                assert serve.stop() == 0, serve.output()[-3000:]
            log = serve.output()
            assert "deadlock detected" not in log.lower(), f"{name}:\n{log[-3000:]}"
            assert "DeadlockDetected" not in log
    worker.terminate()
    worker.wait(timeout=30)
