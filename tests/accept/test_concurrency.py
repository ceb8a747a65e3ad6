"""Several deliveries at once (MTA pipe processes run in parallel): one
ticket per mail, unique ticket numbers, no lost mail, on both databases."""

from __future__ import annotations

import threading
from collections import Counter

from maildesk import db
from maildesk.accept.spool import Incoming
from maildesk.process.service import MailProcessor, Outcome
from tests.conftest import Desk
from tests.mailfactory import make_mail


def _race(desk: Desk, mails: list[bytes]) -> list[Outcome]:
    """Each mail in its own thread with its own engine, started together."""
    barrier = threading.Barrier(len(mails))
    results: list[Outcome | BaseException] = [None] * len(mails)  # type: ignore[list-item]

    def deliver(index: int) -> None:
        engine = db.make_engine(desk.settings.database_url)
        try:
            ingestor = MailProcessor(desk.settings, engine)
            barrier.wait(timeout=30)
            results[index] = ingestor.ingest(Incoming(mails[index], "pipe"))
        except BaseException as exc:  # noqa: BLE001 — reported by the assert below
            results[index] = exc
        finally:
            engine.dispose()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(mails))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results  # type: ignore[return-value]


def test_same_mail_delivered_six_times_at_once_makes_one_ticket(desk: Desk) -> None:
    raw = make_mail(message_id="<parallel@kunde.de>")
    outcomes = _race(desk, [raw] * 6)
    assert Counter(o.action for o in outcomes) == {"created": 1, "duplicate": 5}
    assert len(desk.list()) == 1


def test_different_mails_at_once_get_unique_numbers(desk: Desk) -> None:
    mails = [make_mail(subject=f"parallel {i}", sender=f"k{i}@firma-{i % 2}.de")
             for i in range(8)]
    outcomes = _race(desk, mails)
    assert all(o.action == "created" for o in outcomes), outcomes
    numbers = sorted(o.ticket for o in outcomes)
    assert numbers == list(range(10001, 10009))
    organisations = {t["organisation"] for t in desk.list()}
    assert organisations == {"firma-0.de", "firma-1.de"}
