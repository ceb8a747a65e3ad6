"""Sweep speed: the time rules over 100,000 tickets of which 10% are due
(pending long enough for a reminder, or solved long ago), on SQLite.

Prints the seconds of one sweep and what it did. Target: under 5 s.

    python bench/sweep.py [--tickets 100000] [--due 0.10]
"""

from __future__ import annotations

import os
import sys

# bench/threading.py is named like the stdlib module: keep this folder off
# the path so that `import threading` finds the real one.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from maildesk import db
from maildesk.config import load_settings
from maildesk.models import Customer, Ticket
from maildesk.schedule.sweep import run_sweep
from maildesk.secret import load_secret

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due", type=float, default=0.10)
    args = parser.parse_args()
    rng = random.Random(3)
    with tempfile.TemporaryDirectory(prefix="maildesk-sweep-") as tmp:
        settings = load_settings(None, {"MAILDESK_DATA_DIR": tmp})
        engine = db.make_engine(settings.database_url)
        db.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(insert(Customer.__table__), [
                {"email": f"kunde{c}@firma{c % 50}.de", "name": "", "role": "user",
                 "language": "de", "info_recipient": False, "confirmed": True,
                 "bouncing": False, "created_at": NOW} for c in range(2000)])
        due_count = 0
        for offset in range(0, args.tickets, 20_000):
            rows = []
            for i in range(offset, min(offset + 20_000, args.tickets)):
                is_due = rng.random() < args.due
                due_count += is_due
                kind = rng.choice(("pending", "solved")) if is_due else rng.choice(
                    ("new", "open", "pending", "solved", "closed", "on_hold"))
                age = timedelta(days=30) if is_due else timedelta(hours=rng.randint(1, 48))
                rows.append({
                    "number": 10001 + i, "subject": f"Anfrage {i}", "status": kind,
                    "request_type": "user_help", "priority": "low", "priority_explicit": False,
                    "channel": "email", "requester_id": i % 2000 + 1, "language": "de",
                    "created_at": NOW - age, "updated_at": NOW - age,
                    "pending_since": NOW - age if kind == "pending" else None,
                    "solved_at": NOW - age if kind == "solved" else None,
                    "reminders_sent": 0,
                })
            with engine.begin() as conn:
                conn.execute(insert(Ticket.__table__), rows)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        secret = load_secret(settings)
        start = time.perf_counter()
        report = run_sweep(engine, settings, secret, NOW)
        elapsed = time.perf_counter() - start
        again = time.perf_counter()
        second = run_sweep(engine, settings, secret, NOW)
        idle = time.perf_counter() - again
    print(f"sweep: {args.tickets:,} tickets, {due_count:,} due: {elapsed:.2f} s "
          f"({report.counts()}, {len(report.outbox_ids):,} notifications queued); "
          f"a second sweep with nothing due: {idle * 1000:.0f} ms ({len(second.actions)} actions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
