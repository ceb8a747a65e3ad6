"""Redis, the broker between `maildesk serve` and `maildesk worker`, is
killed for 30 s while customers keep writing, then started again empty.

What a support team must see afterwards: every mail that got its 250 is a
ticket, every customer got exactly one acknowledgement (none lost with the
broker's memory, none sent twice because a row was enqueued twice), and the
outbox shows every notification sent. The outbox table, not the broker, is
the durable record: this test is the proof.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from maildesk import db
from maildesk.models import InboundMail, Message, Outbox, Ticket
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink
from tests.reliability.services import Mta, make_desk, private_redis, start_worker

OUTAGE_SECONDS = 30
#: One mail every this many seconds, before, during and after the outage.
PACE = 0.3


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_redis_killed_for_30s_loses_and_doubles_no_notification(
        sink: Sink, tmp_path: Path, reaper: list) -> None:
    with private_redis(tmp_path / "redis") as redis:
        desk = make_desk(tmp_path, tmp_path / "var",
                         f"sqlite:///{tmp_path / 'var' / 'maildesk.sqlite3'}",
                         MAILDESK_BROKER__URL=redis.url, MAILDESK_RELAY__HOST="127.0.0.1",
                         MAILDESK_RELAY__PORT=str(sink.port),
                         # The sweep that re-enqueues what the broker lost, every
                         # 0.5 s instead of 5: the test stays short, and when Redis
                         # is back the sweep enqueues rows again before the worker's
                         # consumer has reconnected (it waits 3 s), so ids reach the
                         # queue twice and the claim must keep them from going out
                         # twice.
                         MAILDESK_WORKER__SWEEP_SECONDS="0.5", MAILDESK_WORKER__THREADS="2")
        worker = start_worker(desk.env, tmp_path / "worker.log")
        reaper.append(worker)
        serve = start_serve(desk.env, tmp_path)
        reaper.append(serve.process)
        mta = Mta(serve.port)
        stop = threading.Event()
        errors: list[BaseException] = []

        def customers() -> None:
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    sender = f"kunde{n}@firma{n}.de"
                    message_id = f"redis-{n}@firma{n}.de"
                    mta.deliver(sender, make_mail(subject=f"Anfrage {n}", sender=sender,
                                                  message_id=f"<{message_id}>"), message_id)
                    time.sleep(PACE)
            except BaseException as exc:  # noqa: BLE001 — reported by the test thread
                errors.append(exc)

        thread = threading.Thread(target=customers)
        try:
            thread.start()
            # the pipeline works before the fault: acknowledgements arrive
            sink.wait(3, timeout=20)
            redis.kill()
            killed_at = datetime.now(UTC)
            during = len(mta.delivered)
            time.sleep(OUTAGE_SECONDS)
            assert serve.process.poll() is None, serve.output()
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            during = len(mta.delivered) - during
            redis.start()  # same port, empty
            back_at = datetime.now(UTC)
            time.sleep(3)
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not errors, errors
        assert during >= OUTAGE_SECONDS / PACE / 3, f"only {during} mails taken during the outage"
        # Redis is not on the intake path: no customer was put off meanwhile
        assert mta.tempfails == [], mta.tempfails[:5]

        engine = db.make_engine(desk.settings.database_url)
        outbox = Outbox.__table__

        def rows() -> list:
            with engine.connect() as conn:
                return conn.execute(select(outbox)).all()

        def settled() -> bool:
            with engine.connect() as conn:
                states = conn.execute(select(InboundMail.__table__.c.state)).scalars().all()
            current = rows()
            return (len(states) == len(mta.delivered) and set(states) == {"done"}
                    and {r.state for r in current} == {"sent"}
                    and len(sink.received) >= len(current))

        try:
            try:
                wait_until(settled, timeout=60, step=0.2)
            except AssertionError:
                states = Counter(r.state for r in rows())
                raise AssertionError(f"not settled 60 s after Redis came back: outbox {states}, "
                                     f"{len(sink.received)} mails at the sink, "
                                     f"{len(mta.delivered)} taken") from None
            time.sleep(2)  # anything sent twice would arrive now
            assert serve.process.poll() is None and worker.poll() is None
        finally:
            serve_code = serve.stop()
            worker.send_signal(signal.SIGTERM)
            worker_code = worker.wait(timeout=30)
        assert serve_code == 0, serve.output()
        assert worker_code == 0, (tmp_path / "worker.log").read_text()

    final = rows()
    with engine.connect() as conn:
        stored = conn.execute(select(Message.__table__.c.message_id)
                              .where(Message.__table__.c.direction == "in")).scalars().all()
        tickets = conn.execute(select(Ticket.__table__.c.id)).scalars().all()
    # every mail that got 250 is a ticket, exactly once
    assert sorted(stored) == sorted(mta.delivered)
    assert len(tickets) == len(mta.delivered)

    # every notification arrived, each exactly once, and nothing else did
    arrived = Counter(str(r.message["Message-ID"]).strip("<>") for r in sink.received)
    doubled = {mid: n for mid, n in arrived.items() if n > 1}
    assert not doubled, f"sent twice: {list(doubled.items())[:3]}"
    assert set(arrived) == {r.message_id for r in final}
    assert {r.state for r in final} == {"sent"}

    # one acknowledgement per ticket, received once by its customer
    acks = [r for r in final if r.kind == "acknowledgement"]
    assert sorted(r.ticket_id for r in acks) == sorted(tickets)
    for n in range(1, len(mta.delivered) + 1):
        got = [m for m in sink.to(f"kunde{n}@firma{n}.de")
               if m["Auto-Submitted"] == "auto-replied"]
        assert len(got) == 1, f"kunde{n}: {len(got)} acknowledgements"

    # the outage was real: what was written while Redis was down went out
    # only after it came back (through the sweep: the enqueues were lost)
    late = [r for r in final if _aware(r.created_at) > killed_at + timedelta(seconds=1)
            and _aware(r.created_at) < back_at - timedelta(seconds=1)]
    assert late, "no notification was caused during the outage"
    assert all(_aware(r.sent_at) >= back_at for r in late)
