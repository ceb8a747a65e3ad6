"""Threading speed: how long finding the ticket of a reply takes with 1,000,
100,000 and 1,000,000 tickets in the database (SQLite by default).

For each size it prints, per reply (median and p95 over the samples):
- `thread`: the pipeline run (sender checks, rate limit, all threading
  steps, lifecycle) against the database: the decision alone;
- `ingest`: the whole path of `maildesk ingest` for the reply (accept,
  parse, thread, append, commit).
Replies alternate between the ways they can thread: In-Reply-To of a stored
customer mail, our signed Message-ID, the reply token, the subject tag.
Target: thread under 2 ms at 1M tickets, and 1M/1k under 3.

    python bench/threading.py [--sizes 1000,100000,1000000] [--samples 300]
"""

from __future__ import annotations

import os
import sys

# This file is named like the stdlib module; keep its folder off the path so
# that `import threading` elsewhere finds the real one.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import random
import statistics
import tempfile
import time
from email.message import EmailMessage

from sqlalchemy import insert, text

from maildesk import db
from maildesk.accept.spool import Incoming
from maildesk.config import load_settings
from maildesk.mail import tokens
from maildesk.mail.parse import parse_mail
from maildesk.models import Customer, Message, Ticket, utcnow
from maildesk.process import pipeline
from maildesk.process.pipeline.context import make_context
from maildesk.process.service import MailProcessor
from maildesk.secret import load_secret
from maildesk.store.lookup import StoreLookup

CUSTOMERS = 1000
CHUNK = 20_000


def fill(engine, start: int, stop: int) -> None:
    """Tickets start..stop-1 (numbers 10001+i), each with one inbound mail
    and one of our replies, bulk-inserted."""
    now = utcnow()
    with engine.begin() as conn:
        if start == 0:
            conn.execute(insert(Customer.__table__), [
                {"email": f"kunde{c}@firma{c % 50}.de", "name": f"Kunde {c}", "role": "user",
                 "language": "de", "info_recipient": False, "confirmed": True,
                 "bouncing": False, "created_at": now}
                for c in range(CUSTOMERS)
            ])
    for offset in range(start, stop, CHUNK):
        end = min(offset + CHUNK, stop)
        with engine.begin() as conn:
            conn.execute(insert(Ticket.__table__), [
                {"id": i + 1, "number": 10001 + i, "subject": f"Anfrage {i}", "status": "open",
                 "request_type": "user_help", "priority": "low", "priority_explicit": False,
                 "channel": "email", "requester_id": i % CUSTOMERS + 1, "language": "de",
                 "created_at": now, "updated_at": now}
                for i in range(offset, end)
            ])
            conn.execute(insert(Message.__table__), [
                {"ticket_id": i + 1, "direction": direction, "message_id": mid,
                 "from_addr": f"kunde{i % CUSTOMERS}@firma{i % CUSTOMERS % 50}.de",
                 "subject": f"Anfrage {i}", "text": "…", "created_at": now}
                for i in range(offset, end)
                for direction, mid in (("in", f"seed-{i}@firma.de"),
                                       ("out", f"md.{10001 + i}.seed{i}.x@example.com"))
            ])
        print(f"  filled {end:,} tickets", file=sys.stderr, flush=True)


def reply(index: int, total: int, secret: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(total)
    number = 10001 + i
    msg = EmailMessage()
    msg["From"] = f"Kunde <kunde{i % CUSTOMERS}@firma{i % CUSTOMERS % 50}.de>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"AW: Anfrage {i}"
    msg["Message-ID"] = f"<bench-reply-{total}-{index}@firma.de>"
    way = index % 4
    if way == 0:
        msg["In-Reply-To"] = f"<seed-{i}@firma.de>"
    elif way == 1:
        msg["In-Reply-To"] = f"<{tokens.new_message_id(secret, number, 'example.com')}>"
    elif way == 2:
        msg.replace_header("To", tokens.reply_address(secret, "support@example.com", number))
    else:
        msg.replace_header("Subject", f"AW: [#{number}] Anfrage {i}")
    msg.set_content("Danke, hier noch eine Ergänzung.\n")
    return msg.as_bytes()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(7)
    results = {}
    with tempfile.TemporaryDirectory(prefix="maildesk-bench-") as tmp:
        settings = load_settings(None, {"MAILDESK_DATA_DIR": tmp})
        engine = db.make_engine(settings.database_url)
        db.upgrade(engine)
        secret = load_secret(settings)
        ingestor = MailProcessor(settings, engine)
        filled = 0
        for size in sizes:
            fill(engine, filled, size)
            filled = size
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            mails = [reply(n, size, secret, rng) for n in range(args.samples)]
            parsed = [parse_mail(raw) for raw in mails]
            thread_ms = []
            with db.session_scope(engine) as session:
                lookup = StoreLookup(session)
                for mail in parsed:
                    ctx = make_context(settings, secret, now=utcnow())
                    start = time.perf_counter()
                    triage = pipeline.run(mail, lookup, ctx)
                    thread_ms.append((time.perf_counter() - start) * 1000)
                    assert triage.action == "append", triage
            ingest_ms = []
            for raw in mails:
                start = time.perf_counter()
                outcome = ingestor.ingest(Incoming(raw, "pipe"))
                ingest_ms.append((time.perf_counter() - start) * 1000)
                assert outcome.action == "appended", outcome
            results[size] = statistics.median(thread_ms)
            print(f"{size:>9,} tickets: thread median {statistics.median(thread_ms):.3f} ms "
                  f"p95 {percentile(thread_ms, 0.95):.3f} ms | ingest median "
                  f"{statistics.median(ingest_ms):.2f} ms p95 {percentile(ingest_ms, 0.95):.2f} ms",
                  flush=True)
    if len(sizes) > 1:
        ratio = results[sizes[-1]] / results[sizes[0]]
        print(f"ratio thread {sizes[-1]:,}/{sizes[0]:,}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
