"""Notification throughput: 2,000 outbox rows through the real worker
(Dramatiq on Redis, render, compose, SMTP) into a local aiosmtpd sink,
against a plain smtplib loop to the same sink in the same run.

    python bench/notify.py [--count 2000] [--redis redis://127.0.0.1:6379/12]

Without --redis (or MAILDESK_BENCH_REDIS_URL) the embedded in-memory broker
is used. Target: the worker at >= 50% of the plain loop.
"""

from __future__ import annotations

import os
import sys

# bench/threading.py is named like the stdlib module: keep this folder off
# the path so that `import threading` finds the real one.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import smtplib
import socket
import tempfile
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select

from maildesk import db, tokens
from maildesk.config import load_settings
from maildesk.ingest.spool import Incoming
from maildesk.models import Outbox, utcnow
from maildesk.secret import load_secret
from maildesk.service import Ingestor
from maildesk.worker.broker import dispatch, make_broker
from maildesk.worker.runner import WorkerRunner


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plain_loop(port: int, count: int, sink: Counter) -> float:
    """What a bare smtplib loop achieves, one connection per mail as the
    worker does (each notification is its own SMTP transaction)."""
    msg = EmailMessage()
    msg["From"] = "support@example.com"
    msg["To"] = "kunde@firma.de"
    msg["Subject"] = "[#10001] Ihre Anfrage"
    msg.set_content("Guten Tag,\n\nwir haben Ihre Anfrage erhalten.\n" * 20)
    start_count = sink.count
    start = time.perf_counter()
    for _ in range(count):
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(msg)
    elapsed = time.perf_counter() - start
    assert sink.count - start_count == count
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--redis", default=os.environ.get("MAILDESK_BENCH_REDIS_URL", ""))
    args = parser.parse_args()
    sink = Counter()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix="maildesk-notify-") as tmp:
            env = {"MAILDESK_DATA_DIR": tmp, "MAILDESK_RELAY__PORT": str(port),
                   "MAILDESK_BROKER__URL": args.redis, "MAILDESK_WORKER__THREADS": "8",
                   "MAILDESK_NOTIFY__AUTO_LIMIT_COUNT": "1000000",
                   "MAILDESK_LOG__LEVEL": "WARNING"}
            settings = load_settings(None, env)
            engine = db.make_engine(settings.database_url)
            db.upgrade(engine)
            # one real ticket; its notification row is copied `count` times
            Ingestor(settings, engine).ingest(Incoming(
                b"From: Kunde <kunde@firma.de>\r\nTo: support@example.com\r\n"
                b"Subject: Heizung\r\nMessage-ID: <b@firma.de>\r\n\r\nkalt\r\n", "pipe"))
            secret = load_secret(settings)
            with engine.begin() as conn:
                template = conn.execute(select(Outbox.__table__).where(
                    Outbox.__table__.c.kind == "acknowledgement")).one()._mapping
                rows = [{**{k: v for k, v in template.items() if k != "id"},
                         "message_id": tokens.new_message_id(secret, 10001, "example.com"),
                         "created_at": utcnow(), "next_attempt_at": utcnow()}
                        for _ in range(args.count)]
                conn.execute(insert(Outbox.__table__), rows)
                ids = conn.execute(select(Outbox.__table__.c.id).where(
                    Outbox.__table__.c.id > template["id"])).scalars().all()
            broker = make_broker(settings)
            if args.redis:
                broker.client.flushdb()
            runner = WorkerRunner(settings, engine, broker)
            sink.count = 0
            start = time.perf_counter()
            runner.start()
            dispatch(broker, ids)
            while True:
                with engine.connect() as conn:
                    sent = conn.execute(select(func.count()).where(
                        Outbox.__table__.c.state == "sent")).scalar()
                if sent >= args.count:
                    break
                time.sleep(0.02)
            worker_rate = args.count / (time.perf_counter() - start)
            runner.stop()
            broker.close()
            plain_rate = plain_loop(port, args.count, sink)
    finally:
        controller.stop()
    kind = "Redis" if args.redis else "embedded"
    print(f"notify: {args.count} notifications, worker ({kind} broker, 8 threads) "
          f"{worker_rate:.0f} mails/s; plain smtplib loop {plain_rate:.0f} mails/s; "
          f"ratio {worker_rate / plain_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
