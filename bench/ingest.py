"""Ingest throughput: 2,000 generated mails through `maildesk ingest`'s path.

5 KB of text each, one in ten with a 100 KB attachment, on SQLite in a fresh
data dir, in one process. A mail is counted only after the commit that
covers it (group commit per batch: the same durability as single mails).
Prints mails/s and peak RSS.

    python bench/ingest.py [--mails 2000] [--batch 50] [--database-url URL]
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
import resource
import tempfile
import time
from collections import Counter
from email.message import EmailMessage

from maildesk import db
from maildesk.accept.spool import Incoming
from maildesk.config import load_settings
from maildesk.process.service import MailProcessor

WORDS = (
    "Abrechnung Heizung Wohnung Mieter Vertrag Zahlung bitte prüfen Fehler Übersicht "
    "Nebenkosten Störung Straße Grüße Rückfrage Zähler Ablesung Termin dringend"
).split()


def make_mail(index: int, rng: random.Random) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Kunde {index % 300} <kunde{index % 300}@firma{index % 40}.de>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Anfrage {index}: " + " ".join(rng.choices(WORDS, k=5))
    msg["Message-ID"] = f"<bench-{index}-{rng.getrandbits(64):x}@firma.de>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0100"
    text = []
    while sum(len(line) + 1 for line in text) < 5000:
        text.append(" ".join(rng.choices(WORDS, k=10)))
    msg.set_content("\n".join(text))
    if index % 10 == 0:
        msg.add_attachment(rng.randbytes(100_000), maintype="application", subtype="pdf",
                           filename=f"Anhang_{index}.pdf")
    return msg.as_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50,
                        help="mails per group commit (1 = a commit per mail, like the pipe)")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    args = parser.parse_args()

    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="maildesk-bench-") as tmp:
        env = {"MAILDESK_DATA_DIR": tmp}
        if args.database_url:
            env["MAILDESK_DATABASE__URL"] = args.database_url
        settings = load_settings(None, env)
        engine = db.make_engine(settings.database_url)
        db.upgrade(engine)
        ingestor = MailProcessor(settings, engine)
        outcomes: Counter[str] = Counter()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        elapsed = 0.0
        total_bytes = 0
        for offset in range(0, args.mails, args.batch):
            # Mails are made per batch (not timed) so RSS shows maildesk, not the corpus.
            raws = [make_mail(i, rng) for i in range(offset, min(offset + args.batch, args.mails))]
            total_bytes += sum(map(len, raws))
            start = time.perf_counter()
            for outcome in ingestor.ingest_batch([Incoming(raw, "pipe") for raw in raws]):
                outcomes[outcome.action] += 1
            elapsed += time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rate = args.mails / elapsed
    print(f"ingest: {args.mails} mails in {elapsed:.2f} s = {rate:.0f} mails/s "
          f"(batch {args.batch}, {settings.database_url.split(':')[0]}, "
          f"{os.cpu_count()} cpus)")
    print(f"peak RSS: {peak / 1024:.0f} MB (after start-up: {rss_before / 1024:.0f} MB); "
          f"{total_bytes / 1e6:.0f} MB of mail ingested")
    print(f"outcomes: {dict(outcomes)}")
    if outcomes.get("created") != args.mails:
        print("ERROR: not every mail became a ticket", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
