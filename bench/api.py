"""API latency: list 50 tickets with filters from a 100,000-ticket SQLite
database, and create + reply, through the HTTP API of `maildesk serve`,
against the same calls through the CLI's code path in the same run.

- The database is filled by bulk inserts: customers in organisations,
  agents and groups (from a bench config), tickets with a realistic spread
  of status, assignee, group, channel, request type and category over two
  years, one customer mail per ticket and our reply on every ticket past
  "new", their events, some CCs. Cached (keyed by schema revision, fill
  version and size, reused for 48 hours) under --cache. The fill and the
  serve subprocess are bench/dataset.py's (shared with bench/portal.py).
- `maildesk serve` runs as it is run in production (a subprocess, the
  embedded broker, its worker sending to a no-op SMTP sink as relay), and
  is called with aiohttp over loopback with a Bearer token from
  `maildesk tokens create`'s function, one call at a time (latency).
- The direct path is what `maildesk tickets list --json` and `maildesk
  tickets create` / `reply` call: views.ticket_list in a session,
  intake.open_ticket and actions.agent.reply, on an engine of this process
  (without click, the schema check and the printing).
- API and direct calls alternate, so that both see the same machine.
  Lists rotate through 13 filters (limit 50, a cursor's page 2 among
  them); each ticket is created (channel phone, no acknowledgement) and
  answered, through the API or directly. After each API reply the bench
  waits until serve has sent its notification (and prints how long that
  took), so that the direct calls do not pay for it; the direct path's
  notification is sent by this process after its timing, so that the API
  calls do not pay for that one either.

Prints p50/p99/mean per path, the overhead (api - direct) / direct at p50
(the target) and p99, per-filter medians, and PASS/MISS for the targets:
list p99 < 50 ms at 100,000 tickets, API overhead < 30 % (p50).

    python bench/api.py [--tickets 100000] [--calls 2000] [--analyze]
                        [--cache DIR | --no-cache]
"""

from __future__ import annotations

import os
import sys

# bench/threading.py is named like the stdlib module: keep this folder off
# the path so that `import threading` finds the real one.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sqlalchemy import text

from maildesk import db, views
from maildesk.actions import agent as agent_actions
from maildesk.actions import intake
from maildesk.actions.tokens import create_token
from maildesk.config import load_settings
from maildesk.deliver.sender import Sender
from maildesk.secret import load_secret
from maildesk.store.tickets import TicketFilter

sys.path.append(os.path.dirname(_HERE))  # the repository: bench.dataset
from bench.dataset import (  # the fill and serve, shared with bench/portal.py
    CUSTOMERS,
    ME,
    REGULAR,
    SEARCH_WORD,
    body,
    cpu_seconds,
    customer_email,
    log,
    outbox_states,
    prepare_database,
    serve_environment,
    serving,
    words,
)

LIMIT = 50


# -- measuring ------------------------------------------------------------------------------------

#: (label, query parameters); "me" is the token's agent. The cursor query's
#: cursor is filled in from page 1 of status=open at start.
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("newest", {}),
    ("status=open", {"status": "open"}),
    ("status=new&assignee=none", {"status": "new", "assignee": "none"}),
    ("assignee=me", {"assignee": "me"}),
    ("assignee=me&status=pending", {"assignee": "me", "status": "pending"}),
    ("group=2nd-level", {"group": "2nd-level"}),
    ("organisation=firma17.de", {"organisation": "firma17.de"}),
    (f"requester=kunde{REGULAR}@…", {"requester": customer_email(REGULAR)}),
    ("channel=phone", {"channel": "phone"}),
    ("category=Abrechnung", {"category": "Abrechnung"}),
    ("request_type=urgent", {"request_type": "urgent"}),
    (f"q={SEARCH_WORD}", {"q": SEARCH_WORD}),
    ("status=open page 2 (cursor)", {"status": "open", "cursor": ""}),
]


def direct_list(engine: Any, settings: Any, params: dict[str, str]) -> list[dict[str, Any]]:
    """What `maildesk tickets list --json` runs (cli/tickets.py), with the
    filters of the API's TicketFilter and its cursor."""
    assignee = ME if params.get("assignee") == "me" else params.get("assignee")
    wanted = TicketFilter(assignee=assignee, group=params.get("group"),
                          organisation=params.get("organisation"),
                          requester=params.get("requester"),
                          request_type=params.get("request_type"),
                          category=params.get("category"), channel=params.get("channel"))
    cursor = params.get("cursor")
    with db.session_scope(engine) as session:
        return views.ticket_list(session, settings, params.get("status"), params.get("q"),
                                 LIMIT, before=int(cursor) if cursor else None, wanted=wanted)


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def figures(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):6.2f} ms  p99 {pct(values, 0.99):6.2f} ms  "
            f"mean {statistics.fmean(values):6.2f} ms")


def overhead(api: list[float], direct: list[float], share: float) -> float:
    a = statistics.median(api) if share == 0.5 else pct(api, share)
    d = statistics.median(direct) if share == 0.5 else pct(direct, share)
    return (a - d) / d * 100


class Client:
    """Sequential calls over one kept-alive connection; a call's time runs
    until its whole body is read (decoding the JSON is the caller's)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.post_headers = {**self.headers, "Content-Type": "application/json"}

    async def get(self, path: str, expect: int = 200) -> tuple[float, bytes]:
        start = time.perf_counter()
        async with self.session.get(self.base + path, headers=self.headers) as response:
            data = await response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != expect:
            raise SystemExit(f"GET {path}: {response.status} {data[:300]!r}")
        return elapsed, data

    async def post(self, path: str, data: bytes, expect: int = 201) -> tuple[float, bytes]:
        start = time.perf_counter()
        async with self.session.post(self.base + path, data=data,
                                     headers=self.post_headers) as response:
            answer = await response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != expect:
            raise SystemExit(f"POST {path}: {response.status} {answer[:300]!r}")
        return elapsed, answer


async def run_lists(client: Client, engine: Any, settings: Any, calls: int,
                    server_pid: int) -> dict[str, Any]:
    # page 1 of status=open gives the cursor of the page-2 query
    _, page = await client.get("/tickets?" + urlencode({"status": "open", "limit": LIMIT}))
    QUERIES[-1][1]["cursor"] = json.loads(page)["next_cursor"]
    paths = [f"/tickets?{urlencode({**params, 'limit': LIMIT})}" for _, params in QUERIES]
    for (label, params), path in zip(QUERIES, paths, strict=True):  # warm-up and check
        for _ in range(3):
            _, data = await client.get(path)
            rows = direct_list(engine, settings, params)
        api_numbers = [t["number"] for t in json.loads(data)["items"]]
        if api_numbers != [r["number"] for r in rows]:
            raise SystemExit(f"{label}: the API and the direct path disagree")
        if not rows:
            raise SystemExit(f"{label}: no tickets (the fill does not match the filters)")
    api: list[float] = []
    direct: list[float] = []
    per_query: dict[str, tuple[list[float], list[float]]] = {q: ([], []) for q, _ in QUERIES}
    server_cpu, direct_cpu = 0.0, 0.0
    for call in range(calls):
        label, params = QUERIES[call % len(QUERIES)]
        before = cpu_seconds(server_pid)
        elapsed, _ = await client.get(paths[call % len(QUERIES)])
        server_cpu += cpu_seconds(server_pid) - before
        api.append(elapsed)
        per_query[label][0].append(elapsed)
        cpu = time.process_time()
        start = time.perf_counter()
        direct_list(engine, settings, params)
        elapsed = (time.perf_counter() - start) * 1000
        direct_cpu += time.process_time() - cpu
        direct.append(elapsed)
        per_query[label][1].append(elapsed)
        if (call + 1) % 500 == 0:
            log(f"  lists: {call + 1:,}/{calls:,} calls each")
    return {"api": api, "direct": direct, "per_query": per_query,
            "server_cpu": server_cpu / calls * 1000, "direct_cpu": direct_cpu / calls * 1000}


def notification_sent(engine: Any, number: int, timeout: float = 10.0) -> float | None:
    """Milliseconds until the reply's notification on `number` is sent
    (serve's embedded worker), None when not within `timeout`."""
    start = time.perf_counter()
    query = text("SELECT o.state FROM outbox o JOIN ticket t ON t.id = o.ticket_id "
                 "WHERE t.number = :number AND o.kind = 'agent_reply'")
    with engine.connect() as conn:
        while time.perf_counter() - start < timeout:
            if conn.execute(query, {"number": number}).scalar() == "sent":
                return (time.perf_counter() - start) * 1000
            conn.rollback()  # a fresh snapshot next time
            time.sleep(0.0005)
    return None


async def run_writes(client: Client, engine: Any, settings: Any, calls: int,
                     server_pid: int, rng: random.Random) -> dict[str, Any]:
    # The direct path's notifications are sent here, after its timing, the
    # way serve's worker sends the API path's ones while the bench waits:
    # handed over as the CLI does, serve would send them (its wakeup polls
    # SQLite every half second) in the middle of the next API calls, and
    # the API would pay for both paths' mail.
    sender = Sender(settings, engine)
    handed: list[int] = []

    def dispatch(ids: list[int]) -> None:
        handed.extend(ids)

    def request(i: int) -> tuple[str, str, str, str]:
        c = min(int(rng.expovariate(1 / 4000)), CUSTOMERS - 1)
        return (customer_email(c), f"Kunde {c}", f"Anruf: {words(rng, 5)}",
                f"Anruf {i}: {body(rng, 300, False)}")

    times: dict[str, list[float]] = {k: [] for k in (
        "api create", "api reply", "direct create", "direct reply", "direct detail",
        "notification")}
    server_cpu, direct_cpu, unsent = 0.0, 0.0, 0
    warmup = 20
    for i in range(warmup + calls):
        email, name, subject, text_ = request(i)
        reply_text = f"Guten Tag,\n\n{words(rng, 40)}\n\nViele Grüße"
        create = json.dumps({"requester": {"email": email, "name": name}, "subject": subject,
                             "text": text_, "channel": "phone",
                             "acknowledge": False}).encode()
        answer = json.dumps({"text": reply_text}).encode()
        before = cpu_seconds(server_pid)
        created_ms, data = await client.post("/tickets", create)
        number = json.loads(data)["number"]
        reply_ms, _ = await client.post(f"/tickets/{number}/replies", answer)
        # The embedded worker sends the reply's notification now; wait for it,
        # so that the direct calls do not pay for it.
        sent_ms = notification_sent(engine, number)
        cpu_spent = cpu_seconds(server_pid) - before
        cpu = time.process_time()
        start = time.perf_counter()
        opened = intake.open_ticket(engine, settings, requester=email, requester_name=name,
                                    subject=subject, text=text_, actor=ME, dispatch=dispatch,
                                    channel="phone", acknowledge=False)
        middle = time.perf_counter()
        agent_actions.reply(engine, settings, opened.number, ME, reply_text, dispatch=dispatch)
        end = time.perf_counter()
        cpu_spent_direct = time.process_time() - cpu
        # What POST /tickets reads after the action (not the CLI's work): timed apart.
        with db.session_scope(engine) as session:
            views.ticket_detail(session, settings, opened.number)
        detail = time.perf_counter()
        for outbox_id in handed:
            sender.send(outbox_id)
        handed.clear()
        if i < warmup:
            continue
        server_cpu += cpu_spent
        direct_cpu += cpu_spent_direct
        times["api create"].append(created_ms)
        times["api reply"].append(reply_ms)
        times["direct create"].append((middle - start) * 1000)
        times["direct reply"].append((end - middle) * 1000)
        times["direct detail"].append((detail - end) * 1000)
        if sent_ms is None:
            unsent += 1
        else:
            times["notification"].append(sent_ms)
        if (i - warmup + 1) % 500 == 0:
            log(f"  create+reply: {i - warmup + 1:,}/{calls:,} pairs each")
    return {**times, "server_cpu": server_cpu / calls * 1000,
            "direct_cpu": direct_cpu / calls * 1000, "unsent": unsent}


async def measure(args: argparse.Namespace, engine: Any, settings: Any, base: str, token: str,
                  server_pid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        client = Client(session, base, token)
        log(f"lists: {args.calls:,} calls through the API and directly, alternating")
        lists = await run_lists(client, engine, settings, args.calls, server_pid)
        log(f"create+reply: {args.calls:,} pairs through the API and directly, alternating")
        writes = await run_writes(client, engine, settings, args.calls, server_pid,
                                  random.Random(5))
    return lists, writes


def verdict(ok: bool, what: str, figure: str) -> str:
    return f"{'PASS' if ok else 'MISS'}  {what}: {figure}"


def report(args: argparse.Namespace, lists: dict[str, Any], writes: dict[str, Any]) -> None:
    api, direct = lists["api"], lists["direct"]
    n = len(api)
    print(f"\nlist {LIMIT} tickets, {args.tickets:,} tickets in SQLite, {n:,} calls each, "
          f"{len(QUERIES)} filters in turn")
    print(f"  api     {figures(api)}   (server CPU {lists['server_cpu']:.2f} ms/call)")
    print(f"  direct  {figures(direct)}   (CPU {lists['direct_cpu']:.2f} ms/call)")
    list_p50, list_p99 = overhead(api, direct, 0.5), overhead(api, direct, 0.99)
    print(f"  overhead p50 {list_p50:+.0f} %  p99 {list_p99:+.0f} %")
    plain = [t for label, (a, _) in lists["per_query"].items() if not label.startswith("q=")
             for t in a]
    print(f"  api without the text search (q): p99 {pct(plain, 0.99):.2f} ms")
    print(f"  {'filter':<30} {'api p50':>8} {'direct p50':>10} {'api p99':>8} "
          f"{'direct p99':>10}")
    for label, (a, d) in lists["per_query"].items():
        print(f"  {label:<30} {statistics.median(a):8.2f} {statistics.median(d):10.2f} "
              f"{pct(a, 0.99):8.2f} {pct(d, 0.99):10.2f}")
    print(f"\ncreate (channel phone, no acknowledgement) + reply, {len(writes['api create']):,} "
          "pairs each")
    for kind in ("create", "reply"):
        a, d = writes[f"api {kind}"], writes[f"direct {kind}"]
        print(f"  api {kind:<6}     {figures(a)}")
        print(f"  direct {kind:<6}  {figures(d)}   overhead p50 "
              f"{overhead(a, d, 0.5):+.0f} %  p99 {overhead(a, d, 0.99):+.0f} %")
    with_detail = [c + r for c, r in zip(writes["direct create"], writes["direct detail"],
                                         strict=True)]
    print(f"  direct create + the detail POST /tickets answers with: {figures(with_detail)}   "
          f"overhead p50 {overhead(writes['api create'], with_detail, 0.5):+.0f} %")
    pair_api = [c + r for c, r in zip(writes["api create"], writes["api reply"], strict=True)]
    # POST /tickets answers with the ticket read back: the direct pair does that work too
    pair_direct = [c + r for c, r in zip(with_detail, writes["direct reply"], strict=True)]
    pair_p50 = overhead(pair_api, pair_direct, 0.5)
    print(f"  api pair        {figures(pair_api)}   "
          f"(server CPU {writes['server_cpu']:.2f} ms/pair, its notification's send included)")
    print(f"  direct pair     {figures(pair_direct)}   (create, the detail read back, reply; "
          f"CPU {writes['direct_cpu']:.2f} ms/pair)")
    print(f"  overhead p50 {pair_p50:+.0f} %  p99 "
          f"{overhead(pair_api, pair_direct, 0.99):+.0f} %")
    sent = writes["notification"]
    if sent:
        print(f"  the API reply's notification sent by serve's embedded worker {figures(sent)}  "
              f"max {max(sent):.0f} ms after the answer"
              + (f"; {writes['unsent']} not within 10 s" if writes["unsent"] else ""))
    print()
    print(verdict(pct(api, 0.99) < 50, "list p99 < 50 ms", f"{pct(api, 0.99):.1f} ms"))
    print(verdict(list_p50 < 30, "API overhead < 30 % (p50), lists", f"{list_p50:+.0f} %"))
    print(verdict(pair_p50 < 30, "API overhead < 30 % (p50), create+reply", f"{pair_p50:+.0f} %"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2000,
                        help="list calls per path, and create+reply pairs per path")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "maildesk-bench", help="where filled databases are kept")
    parser.add_argument("--no-cache", action="store_true", help="always fill afresh")
    parser.add_argument("--analyze", action="store_true",
                        help="run ANALYZE after the fill (maildesk itself never does)")
    args = parser.parse_args()
    wall = time.perf_counter()
    print(f"api: {args.tickets:,} tickets, {args.calls:,} calls per path, "
          f"{os.cpu_count()} cpus, SQLite", flush=True)
    with tempfile.TemporaryDirectory(prefix="maildesk-api-") as tmp:
        data, config, env, web_port, relay_port = serve_environment(Path(tmp))
        how = prepare_database(data / "maildesk.sqlite3", args.tickets,
                               None if args.no_cache else args.cache)
        size = (data / "maildesk.sqlite3").stat().st_size / 1e6
        if args.analyze:
            with sqlite3.connect(data / "maildesk.sqlite3") as conn:
                conn.execute("ANALYZE")
            how += "; ANALYZE run"
        print(f"database: {size:.0f} MB ({how})", flush=True)
        settings = load_settings(config, env)
        engine = db.make_engine(settings.database_url)
        db.require_schema(engine, settings.database_url)
        load_secret(settings)  # made here, before serve and this process race for it
        token, _ = create_token(engine, settings, ME, name="bench")  # `maildesk tokens create`
        # serve's log at the configured level, as journald gets it
        try:
            with serving(env, web_port, relay_port, Path(tmp) / "serve.log") as server:
                lists, writes = asyncio.run(measure(
                    args, engine, settings, f"http://127.0.0.1:{web_port}/api/v1", token,
                    server.pid))
                deadline = time.monotonic() + 60  # the notifications of the replies go out
                while time.monotonic() < deadline:
                    states = outbox_states(engine)
                    if not states.get("queued") and not states.get("sending"):
                        break
                    time.sleep(0.5)
        finally:
            engine.dispose()
    report(args, lists, writes)
    print(f"notifications of the replies (outbox by state): {states}")
    print(f"wall time {time.perf_counter() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
