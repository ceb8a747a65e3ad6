"""Notification throughput: 2,000 outbox rows through the real worker
(Dramatiq on Redis, render, compose, SMTP) into a local aiosmtpd sink,
against a plain smtplib loop to the same sink in the same run.

    python bench/notify.py [--count 2000] [--redis redis://127.0.0.1:6379/12]
                           [--processes N] [--database URL]

Without --redis (or MAILDESK_BENCH_REDIS_URL) the embedded in-memory broker
is used. Target: the worker at >= 50% of the plain loop.

By default the worker (8 threads) and the plain loop run inside this
process, beside the sink. With --processes N (Redis only) the worker is
`maildesk worker` with worker.processes = N, and the plain loop runs in a
process of its own too, so that both talk to the sink from outside its
process, as to a real relay. --database runs on another database (e.g.
postgresql://postgres@127.0.0.1:5432/test; the bench makes and drops a
schema of its own there).
"""

from __future__ import annotations

import os
import sys

# bench/threading.py is named like the stdlib module: keep this folder off
# the path so that `import threading` finds the real one.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import multiprocessing
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select, text

from maildesk import db
from maildesk.accept.spool import Incoming
from maildesk.config import load_settings
from maildesk.deliver.broker import dispatch, make_broker
from maildesk.deliver.runner import WorkerRunner
from maildesk.mail import tokens
from maildesk.models import Outbox, utcnow
from maildesk.process.service import MailProcessor
from maildesk.secret import load_secret


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


def plain_loop(port: int, count: int, sink: Counter | None) -> float:
    """What a bare smtplib loop achieves, one connection per mail as the
    worker does (each notification is its own SMTP transaction)."""
    msg = EmailMessage()
    msg["From"] = "support@example.com"
    msg["To"] = "kunde@firma.de"
    msg["Subject"] = "[#10001] Ihre Anfrage"
    msg.set_content("Guten Tag,\n\nwir haben Ihre Anfrage erhalten.\n" * 20)
    start_count = sink.count if sink else 0
    start = time.perf_counter()
    for _ in range(count):
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(msg)
    elapsed = time.perf_counter() - start
    if sink:
        assert sink.count - start_count == count
    return count / elapsed


def _plain_child(port: int, count: int, out: multiprocessing.Queue) -> None:
    out.put(plain_loop(port, count, None))


def plain_loop_elsewhere(port: int, count: int, sink: Counter) -> float:
    """plain_loop in a process of its own."""
    start_count = sink.count
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_plain_child, args=(port, count, out))
    child.start()
    rate = out.get()
    child.join()
    assert sink.count - start_count == count
    return float(rate)


def start_worker_processes(env: dict[str, str], processes: int,
                           broker: object) -> subprocess.Popen[bytes]:
    """`maildesk worker` with `processes` processes; returns once every one
    of them is fetching from the queue (its heartbeat is in Redis)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "maildesk", "worker"],
        env={**os.environ, **env, "MAILDESK_WORKER__PROCESSES": str(processes)})
    deadline = time.monotonic() + 60
    while broker.client.zcard("maildesk:__heartbeats__") < processes:  # type: ignore[attr-defined]
        if child.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("maildesk worker did not start")
        time.sleep(0.05)
    return child


def _schema_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--redis", default=os.environ.get("MAILDESK_BENCH_REDIS_URL", ""))
    parser.add_argument("--processes", type=int, default=0,
                        help="run `maildesk worker` with this many processes (needs --redis)")
    parser.add_argument("--database", default="",
                        help="a PostgreSQL URL instead of SQLite in the temp dir")
    args = parser.parse_args()
    if args.processes and not args.redis:
        parser.error("--processes needs --redis")
    schema = f"bench_{uuid.uuid4().hex[:10]}" if args.database else ""
    if args.database:
        admin = db.make_engine(args.database)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        return run(args, _schema_url(args.database, schema) if schema else "")
    finally:
        if args.database:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def run(args: argparse.Namespace, database_url: str) -> int:
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
            if database_url:  # worker refuses a generated secret on PostgreSQL
                env["MAILDESK_DATABASE__URL"] = database_url
                env["MAILDESK_SECURITY__SECRET"] = "bench-secret"
            settings = load_settings(None, env)
            engine = db.make_engine(settings.database_url)
            db.upgrade(engine)
            # one real ticket; its notification row is copied `count` times
            MailProcessor(settings, engine).ingest(Incoming(
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
            sink.count = 0
            if args.processes:
                child = start_worker_processes(env, args.processes, broker)
                start = time.perf_counter()
            else:
                runner = WorkerRunner(settings, engine, broker)
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
            if args.processes:
                child.terminate()
                child.wait(timeout=60)
            else:
                runner.stop()
            broker.close()
            engine.dispose()
            if args.processes:
                plain_rate = plain_loop_elsewhere(port, args.count, sink)
            else:
                plain_rate = plain_loop(port, args.count, sink)
    finally:
        controller.stop()
    kind = "Redis" if args.redis else "embedded"
    where = (f"maildesk worker, {args.processes} processes x 8 threads; plain loop in a "
             "process of its own" if args.processes else "8 threads")
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"notify: {args.count} notifications, {backend}, worker ({kind} broker, {where}) "
          f"{worker_rate:.0f} mails/s; plain smtplib loop {plain_rate:.0f} mails/s; "
          f"ratio {worker_rate / plain_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
