"""One `maildesk serve` against two on the same PostgreSQL, in one run.

The same N mails (~5 KB, new customers, one ticket each) go over SMTP to
one instance, then, on a fresh schema, split over two instances (half the
client sessions each, as two MX records would share them), with 20 % of
the mails delivered to both (the dedup key makes them one). The rate is
end to end: until every mail got its 250 and its ticket is committed;
the embedded worker of each instance sends the notifications to a no-op
relay meanwhile. Prints both rates, p50/p99 of the SMTP transaction, and
the ratio: a second instance should add throughput, not deadlocks.

    python bench/instances.py --database postgresql://postgres@127.0.0.1/test \
        [--mails 1000] [--concurrency 8]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(_HERE).parent
_spec = importlib.util.spec_from_file_location("smtp_load", Path(_HERE) / "smtp_load.py")
assert _spec is not None and _spec.loader is not None
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)


def schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def drive_split(ports: list[int], mails: list[bytes], concurrency: int,
                both_every: int) -> list[float]:
    """Sessions spread over the ports; every `both_every`-th mail also goes
    to the next port. Returns the latencies (ms)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        import smtplib

        mine = []
        port = ports[index % len(ports)]
        other = ports[(index + 1) % len(ports)]
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client, \
                smtplib.SMTP("127.0.0.1", other, timeout=60) as second:
            for n, raw in enumerate(mails[index::concurrency]):
                start = time.perf_counter()
                client.sendmail("kunde@firma.de", ["support@example.com"], raw)
                mine.append((time.perf_counter() - start) * 1000)
                if len(ports) > 1 and n % both_every == 0:
                    second.sendmail("kunde@firma.de", ["support@example.com"], raw)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run(base_url: str, instances: int, mails: list[bytes],
        concurrency: int) -> tuple[float, list[float]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = schema_url(base_url, schema)
    relay_port = load.free_port()
    relay = subprocess.Popen([sys.executable, "-c", load.SINK, str(relay_port)])
    processes: list[subprocess.Popen[bytes]] = []
    try:
        load.wait_port(relay_port, relay)
        with tempfile.TemporaryDirectory(prefix="maildesk-inst-") as tmp:
            base = {**os.environ, "MAILDESK_DATABASE__URL": url,
                    "MAILDESK_SECURITY__SECRET": "bench-secret-shared",
                    "MAILDESK_LOG__LEVEL": "WARNING", "MAILDESK_SMTP__MAX_CONNECTIONS": "200",
                    "MAILDESK_LOOPS__RATE_LIMIT_COUNT": "100000",
                    "MAILDESK_NOTIFY__AUTO_LIMIT_COUNT": "100000",
                    "MAILDESK_RELAY__PORT": str(relay_port)}
            subprocess.run([sys.executable, "-m", "maildesk", "db", "upgrade"], env=base,
                           check=True, cwd=REPO, stdout=subprocess.DEVNULL)
            ports = []
            for i in range(instances):
                port = load.free_port()
                env = {**base, "MAILDESK_DATA_DIR": f"{tmp}/var{i}",
                       "MAILDESK_SMTP__PORT": str(port),
                       "MAILDESK_WEB__PORT": str(load.free_port())}
                processes.append(subprocess.Popen([sys.executable, "-m", "maildesk", "serve"],
                                                  env=env, cwd=REPO))
                ports.append(port)
            for port, process in zip(ports, processes, strict=True):
                load.wait_port(port, process)
            engine = create_engine(url)
            start = time.perf_counter()
            latencies = drive_split(ports, mails, concurrency, both_every=5)
            with engine.connect() as conn:
                while conn.execute(text("SELECT count(*) FROM inbound_mail "
                                        "WHERE state = 'done'")).scalar_one() < len(mails):
                    conn.commit()
                    time.sleep(0.02)
                seconds = time.perf_counter() - start
                tickets = conn.execute(text("SELECT count(*) FROM ticket")).scalar_one()
                failed = conn.execute(text("SELECT count(*) FROM inbound_mail "
                                           "WHERE state <> 'done'")).scalar_one()
            engine.dispose()
            if tickets != len(mails) or failed:
                raise SystemExit(f"{instances} instances: {tickets} tickets for {len(mails)} "
                                 f"mails, {failed} not done")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        relay.terminate()
        relay.wait(timeout=10)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return len(mails) / seconds, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL URL (schemas are "
                        "created and dropped in it)")
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"{args.mails} mails of ~5 KB, {args.concurrency} SMTP sessions, "
          f"{os.cpu_count()} cpus, PostgreSQL; two instances: 20 % of mails to both")
    rates = {}
    for instances in (1, 2):
        mails = load.make_mails(args.mails, f"i{instances}-{uuid.uuid4().hex[:6]}")
        rate, lat = run(args.database, instances, mails, args.concurrency)
        rates[instances] = rate
        print(f"{instances} instance{'s' if instances > 1 else ' '}: {rate:6.0f} mails/s "
              f"end to end, SMTP p50 {statistics.median(lat):6.1f} ms "
              f"p99 {load.pct(lat, 0.99):6.1f} ms", flush=True)
    print(f"ratio two/one: {rates[2] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
