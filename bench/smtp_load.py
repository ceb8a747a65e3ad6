"""SMTP load: `maildesk serve` against a no-op aiosmtpd sink, same client.

Sends N mails of ~5 KB over loopback at concurrency 1, 8 and 32 (threads,
each with its own SMTP session reused for many mails, as an MTA does), to
 - an aiosmtpd sink in its own process whose handler does nothing, and
 - `maildesk serve` on a fresh SQLite data dir,
and prints mails/s and p50/p99 latency of the SMTP transaction for both.
For maildesk, the rate is end to end: until every mail got its 250 AND its
ticket is committed; its acknowledgements and agent notices go out to a
second no-op sink meanwhile (the embedded worker), as they would in use.
Target: at concurrency 8, maildesk >= 50% of the sink's rate, p99 under
200 ms.

    python bench/smtp_load.py [--mails 2000] [--concurrency 1,8,32]
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
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(_HERE).parent
WORDS = "Heizung Wasser Strom Abrechnung Mieter Zähler prüfen bitte dringend Termin".split()

SINK = """
import asyncio, sys
from aiosmtpd.smtp import SMTP

class Nothing:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

class Sink(SMTP):
    line_length_limit = 1024 * 1024  # as maildesk's listener

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Sink(Nothing(), decode_data=False, enable_SMTPUTF8=True),
        "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited early")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def make_mails(count: int, tag: str) -> list[bytes]:
    rng = random.Random(count)
    mails = []
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = f"Kunde {i % 200} <kunde{i % 200}@firma{i % 30}.de>"
        msg["To"] = "support@example.com"
        msg["Subject"] = f"Last {tag} {i}: " + " ".join(rng.choices(WORDS, k=4))
        msg["Message-ID"] = f"<load-{tag}-{i}@firma.de>"
        body = []
        while sum(len(x) + 1 for x in body) < 5000:
            body.append(" ".join(rng.choices(WORDS, k=12)))
        msg.set_content("\n".join(body))
        mails.append(msg.as_bytes())
    return mails


def drive(port: int, mails: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    """Send all mails with `concurrency` sessions; (seconds, latencies ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [mails[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[bytes]) -> None:
        mine = []
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            for raw in chunk:
                start = time.perf_counter()
                client.sendmail("kunde@firma.de", ["support@example.com"], raw)
                mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, latencies


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run_sink(mails: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        wait_port(port, process)
        seconds, latencies = drive(port, mails, concurrency)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return len(mails) / seconds, latencies


def run_maildesk(mails: list[bytes], concurrency: int) -> tuple[float, float, list[float]]:
    """(end-to-end mails/s, 250-only mails/s, latencies)."""
    relay_port = free_port()  # maildesk sends its acknowledgements here: real work
    relay = subprocess.Popen([sys.executable, "-c", SINK, str(relay_port)])
    wait_port(relay_port, relay)
    with tempfile.TemporaryDirectory(prefix="maildesk-load-") as tmp:
        port = free_port()
        env = {**os.environ, "MAILDESK_DATA_DIR": tmp, "MAILDESK_SMTP__PORT": str(port),
               "MAILDESK_LOG__LEVEL": "WARNING", "MAILDESK_SMTP__MAX_CONNECTIONS": "200",
               "MAILDESK_LOOPS__RATE_LIMIT_COUNT": "100000",
               "MAILDESK_NOTIFY__AUTO_LIMIT_COUNT": "100000",
               "MAILDESK_RELAY__PORT": str(relay_port), "MAILDESK_WEB__PORT": str(free_port())}
        maildesk = [sys.executable, "-m", "maildesk"]
        subprocess.run([*maildesk, "db", "upgrade"], env=env, check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
        process = subprocess.Popen([*maildesk, "serve"], env=env, cwd=REPO)
        try:
            wait_port(port, process)
            start = time.perf_counter()
            seconds, latencies = drive(port, mails, concurrency)
            database = sqlite3.connect(Path(tmp) / "maildesk.sqlite3")
            while True:
                done = database.execute(
                    "SELECT count(*) FROM inbound_mail WHERE state = 'done'").fetchone()[0]
                if done >= len(mails):
                    break
                time.sleep(0.01)
            end_to_end = time.perf_counter() - start
            tickets = database.execute("SELECT count(*) FROM ticket").fetchone()[0]
            database.close()
            if tickets != len(mails):
                raise SystemExit(f"expected {len(mails)} tickets, found {tickets}")
        finally:
            process.terminate()
            process.wait(timeout=60)
            relay.terminate()
            relay.wait(timeout=10)
    return len(mails) / end_to_end, len(mails) / seconds, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,8,32")
    args = parser.parse_args()
    print(f"{args.mails} mails of ~5 KB per run, {os.cpu_count()} cpus, SQLite")
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        mails = make_mails(args.mails, f"c{concurrency}")
        sink_rate, sink_lat = run_sink(mails, concurrency)
        rate, accept_rate, lat = run_maildesk(mails, concurrency)
        print(f"concurrency {concurrency:>2}: sink {sink_rate:7.0f} mails/s "
              f"p50 {statistics.median(sink_lat):6.1f} ms p99 {pct(sink_lat, 0.99):6.1f} ms | "
              f"maildesk {rate:6.0f} mails/s end to end ({accept_rate:.0f}/s 250s) "
              f"p50 {statistics.median(lat):6.1f} ms p99 {pct(lat, 0.99):6.1f} ms | "
              f"ratio {rate / sink_rate:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
