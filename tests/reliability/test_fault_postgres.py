"""PostgreSQL goes down for a few seconds and comes back while customers'
MTAs keep delivering to `maildesk serve`.

What the senders must see: a temporary refusal (4xx, so their MTA keeps
the mail and retries), never a bounce; and once the database is back, their
retries are taken. What the support team must see: every mail exactly once
as a ticket, nothing stuck half-way, and a daemon that stayed up through
the outage without anyone restarting it (its pooled connections all died
with the server).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from maildesk import db
from maildesk.models import InboundMail, Message, Ticket
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink
from tests.reliability.services import Mta, make_desk, private_postgres

CLIENTS = 3
OUTAGE_SECONDS = 5


def test_postgres_restart_during_traffic_refuses_temporarily_and_loses_nothing(
        sink: Sink, tmp_path: Path, reaper: list) -> None:
    with private_postgres() as pg:
        desk = make_desk(tmp_path, tmp_path / "var", pg.url,
                         MAILDESK_RELAY__HOST="127.0.0.1", MAILDESK_RELAY__PORT=str(sink.port))
        serve = start_serve(desk.env, tmp_path)
        reaper.append(serve.process)
        mta = Mta(serve.port, retry_seconds=0.5)
        stop = threading.Event()
        errors: list[BaseException] = []
        sent: list[str] = []

        def customer(worker: int) -> None:
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    sender = f"kunde{worker}-{n}@firma{worker}.de"
                    message_id = f"pg-{worker}-{n}@firma{worker}.de"
                    sent.append(message_id)
                    mta.deliver(sender, make_mail(subject=f"Anfrage {worker}/{n}", sender=sender,
                                                  message_id=f"<{message_id}>"),
                                message_id, within=60)
                    time.sleep(0.1)
            except BaseException as exc:  # noqa: BLE001 — reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=customer, args=(w,)) for w in range(CLIENTS)]
        try:
            for thread in threads:
                thread.start()
            wait_until(lambda: len(mta.delivered) >= 10, timeout=30)
            pg.stop("fast")  # every connection of serve's pools dies now
            stopped_with = len(mta.delivered)
            time.sleep(OUTAGE_SECONDS)
            taken_meanwhile = len(mta.delivered) - stopped_with
            pg.start()
            # traffic goes on until the retries got through and then some
            wait_until(lambda: len(mta.delivered) >= stopped_with + 15, timeout=60)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=90)
        assert not errors, errors
        assert serve.process.poll() is None, "serve died:\n" + serve.output()

        # the senders were told to come back later, and they were not told
        # anything else: a 451, not a dropped connection or a 5xx
        assert mta.tempfails, "no temporary refusal during the outage"
        assert {code for _, code in mta.tempfails} == {451}, Counter(mta.tempfails)
        assert taken_meanwhile <= CLIENTS, "mails were taken while PostgreSQL was down"

        engine = db.make_engine(pg.url)
        try:
            def processed() -> bool:
                with engine.connect() as conn:
                    states = conn.execute(select(InboundMail.__table__.c.state)).scalars().all()
                return len(states) == len(set(sent)) and set(states) == {"done"}

            try:
                wait_until(processed, timeout=30, step=0.2)
            except AssertionError:
                with engine.connect() as conn:
                    states = Counter(conn.execute(
                        select(InboundMail.__table__.c.state)).scalars().all())
                raise AssertionError(f"inbound mails not all processed 30 s after the "
                                     f"restart: {states}\n{serve.output()[-3000:]}") from None
            with engine.connect() as conn:
                stored = conn.execute(select(Message.__table__.c.message_id)
                                      .where(Message.__table__.c.direction == "in")
                                      ).scalars().all()
                tickets = conn.execute(select(Ticket.__table__.c.id)).scalars().all()
        finally:
            engine.dispose()
            code = serve.stop()
        assert code == 0, serve.output()

    # every mail exactly once, as its own ticket
    assert sorted(set(mta.delivered)) == sorted(sent)
    assert sorted(stored) == sorted(sent), Counter(stored).most_common(3)
    assert len(tickets) == len(sent)
