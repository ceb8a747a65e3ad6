"""API latency: list 50 tickets with filters from a 100,000-ticket SQLite
database, and create + reply, through the HTTP API of `maildesk serve`,
against the same calls through the CLI's code path in the same run.

- The database is filled by bulk inserts: customers in organisations,
  agents and groups (from a bench config), tickets with a realistic spread
  of status, assignee, group, channel, request type and category over two
  years, one customer mail per ticket and our reply on every ticket past
  "new", their events, some CCs. Cached (keyed by schema revision, fill
  version and size, reused for 48 hours) under --cache.
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
  took), so that the direct calls do not pay for it.

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
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sqlalchemy import insert, text

from maildesk import db, views
from maildesk.actions import agent as agent_actions
from maildesk.actions import intake
from maildesk.actions.tokens import create_token
from maildesk.config import PRIORITY_FOR_TYPE, load_settings
from maildesk.deliver.broker import hand_over
from maildesk.models import (
    Agent,
    AgentGroup,
    Customer,
    Event,
    GroupMember,
    Message,
    Organisation,
    OrganisationDomain,
    Participant,
    Ticket,
    utcnow,
)
from maildesk.secret import load_secret
from maildesk.store.tickets import TicketFilter

REPO = Path(_HERE).parent
#: Bump when the fill changes (the cache key).
FILL_VERSION = 1
#: The cache is reused this long: pending and solved times are set relative
#: to the fill, and serve's sweep must find nothing due.
CACHE_HOURS = 48
CHUNK = 10_000
LIMIT = 50

ME = "agent@example.com"
AGENTS = [ME] + [f"agent{i}@example.com" for i in range(1, 8)]
AGENT_WEIGHTS = [20] + [10] * 7
GROUPS = ["1st-level", "2nd-level", "billing", "field-service"]
CATEGORIES = ["Abrechnung", "Zugang", "Drucker", "Netzwerk", "Software", "Hardware",
              "Vertrag", "Sonstiges"]
FREE_DOMAINS = ["gmail.com", "web.de", "gmx.de", "t-online.de"]
ORGANISATIONS = 2000
CUSTOMERS = 20_000
#: The customer the requester filter asks for.
REGULAR = 42
#: The text search: a word in about 2% of the customers' mails.
SEARCH_WORD = "Heizkostenabrechnung"
WORDS = ("Heizung Wasser Strom Abrechnung Mieter Zähler prüfen bitte dringend Termin "
         "Rechnung Vertrag Kündigung Drucker Zugang Passwort Server Netzwerk langsam "
         "Fehler Meldung seit gestern heute Morgen wieder nicht mehr funktioniert "
         "Rückruf Techniker Ersatzteil Lieferung Angebot Frage Hilfe danke Grüße").split()

CONFIG = f"""
groups = [
{",".join(f'  {{ name = "{g}", members = ["{AGENTS[i % 8]}", "{AGENTS[(i + 3) % 8]}"] }}'
          for i, g in enumerate(GROUPS))}
]
agents = [
{",".join(f'  {{ email = "{a}", name = "Agent {i}" }}' for i, a in enumerate(AGENTS))}
]
"""

SINK = """
import asyncio, sys
from aiosmtpd.smtp import SMTP

class Nothing:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Nothing(), decode_data=False, enable_SMTPUTF8=True),
        "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()

asyncio.run(main())
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- filling --------------------------------------------------------------------------------------


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(WORDS, k=count))


def body(rng: random.Random, size: int, search: bool) -> str:
    lines, length = ["Guten Tag,", ""], 0
    while length < size:
        line = words(rng, 10)
        lines.append(line)
        length += len(line) + 1
    if search:
        lines.insert(rng.randint(2, len(lines)), f"die {SEARCH_WORD} stimmt nicht")
    return "\n".join([*lines, "", "Mit freundlichen Grüßen"])


def customer_email(c: int) -> str:
    if c % 7 == 6:  # one in seven writes from a free-mail address: no organisation
        return f"kunde{c}@{FREE_DOMAINS[c % len(FREE_DOMAINS)]}"
    return f"kunde{c}@firma{c % ORGANISATIONS}.de"


def customer_org(c: int) -> int | None:
    return None if c % 7 == 6 else c % ORGANISATIONS + 1


def fill(url: str, count: int, rng: random.Random) -> None:
    """The whole database by bulk inserts, on an engine of its own (its
    connections write without fsync; it is disposed afterwards)."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    now = utcnow()
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(insert(Agent.__table__), [
            {"id": i + 1, "email": a, "name": f"Agent {i}", "language": "de", "active": True}
            for i, a in enumerate(AGENTS)])
        conn.execute(insert(AgentGroup.__table__), [
            {"id": i + 1, "name": g, "email": None} for i, g in enumerate(GROUPS)])
        conn.execute(insert(GroupMember.__table__), [
            {"group_id": i + 1, "agent_id": j % 8 + 1}
            for i in range(len(GROUPS)) for j in (i, i + 3)])
        conn.execute(insert(Organisation.__table__), [
            {"id": o + 1, "name": f"firma{o}.de", "created_at": now - timedelta(days=800)}
            for o in range(ORGANISATIONS)])
        conn.execute(insert(OrganisationDomain.__table__), [
            {"organisation_id": o + 1, "domain": f"firma{o}.de"} for o in range(ORGANISATIONS)])
        conn.execute(insert(Customer.__table__), [
            {"id": c + 1, "email": customer_email(c), "name": f"Kunde {c}",
             "organisation_id": customer_org(c), "role": "user", "info_recipient": False,
             "language": "en" if c % 10 == 0 else "de", "confirmed": c % 3 != 0,
             "confirmed_at": now - timedelta(days=700) if c % 3 != 0 else None,
             "bouncing": False, "created_at": now - timedelta(days=800)}
            for c in range(CUSTOMERS)])
    span = timedelta(days=730)
    for offset in range(0, count, CHUNK):
        tickets, messages, events, participants = [], [], [], []
        for i in range(offset, min(offset + CHUNK, count)):
            tickets.append(_ticket(rng, i, count, now, span, messages, events, participants))
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.execute(insert(Ticket.__table__), tickets)
            conn.execute(insert(Message.__table__), messages)
            conn.execute(insert(Event.__table__), events)
            if participants:
                conn.execute(insert(Participant.__table__), participants)
        done = min(offset + CHUNK, count)
        log(f"  filled {done:,}/{count:,} tickets ({time.perf_counter() - started:.1f} s)")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def _ticket(rng: random.Random, i: int, count: int, now: Any, span: timedelta,
            messages: list[dict[str, Any]], events: list[dict[str, Any]],
            participants: list[dict[str, Any]]) -> dict[str, Any]:
    ticket_id, number = i + 1, 10001 + i
    created = now - span * ((count - i) / count) - timedelta(minutes=rng.random() * 10)
    age = now - created
    if age < timedelta(days=14):
        status = rng.choices(["new", "open", "pending", "on_hold", "solved"],
                             [20, 35, 15, 5, 25])[0]
    else:
        status = rng.choices(["closed", "on_hold", "open", "pending", "solved"],
                             [90, 3, 4, 2, 1])[0]
    # skewed towards the low customer numbers: some customers write a lot;
    # the one the requester filter asks for writes one ticket in 500
    customer = REGULAR if i % 500 == 0 else min(int(rng.expovariate(1 / 4000)), CUSTOMERS - 1)
    request_type = rng.choices(["user_help", "incident", "product_request", "urgent"],
                               [60, 25, 10, 5])[0]
    channel = rng.choices(["email", "phone", "web"], [80, 15, 5])[0]
    assigned = rng.random() < (0.2 if status == "new" else 0.9)
    assignee = rng.choices(range(1, 9), AGENT_WEIGHTS)[0] if assigned else None
    group = rng.choices([None, 1, 2, 3, 4], [25, 35, 20, 12, 8])[0]
    first_response = None
    if status != "new":
        first_response = min(created + timedelta(minutes=rng.randint(10, 480)), now)
    updated = min(created + timedelta(minutes=rng.randint(1, 60 * 24 * 10)), now)
    pending_since = solved_at = closed_at = None
    if status == "pending":  # recent: serve's sweep must find no reminder due
        pending_since = max(now - timedelta(hours=rng.random() * 36), created)
        updated = pending_since
    elif status == "solved":  # recent: no auto-close due
        solved_at = max(now - timedelta(days=rng.random() * 7), created)
        updated = solved_at
    elif status == "closed":
        solved_at = created + timedelta(hours=rng.randint(1, 120))
        closed_at = min(solved_at + timedelta(days=14), now)
        updated = closed_at
    subject = words(rng, rng.randint(3, 7))
    search = rng.random() < 0.02
    if search and rng.random() < 0.3:
        subject = f"{SEARCH_WORD} {subject}"
    email = customer_email(customer)
    messages.append({
        "ticket_id": ticket_id, "direction": "in", "from_addr": email,
        "from_name": f"Kunde {customer}", "to_addrs": "support@example.com", "cc_addrs": "",
        "subject": subject, "date": created, "message_id": f"<m{number}@{email.split('@')[1]}>",
        "in_reply_to": "", "references": "", "text": body(rng, rng.randint(200, 1200), search),
        "text_display": "", "html": "", "reply_to": "", "author": email, "authenticity": "",
        "created_at": created})
    events.append({"ticket_id": ticket_id, "at": created, "actor": "maildesk",
                   "field": "created", "old": None,
                   "new": f"status new, type {request_type}, channel {channel}"})
    if first_response is not None:
        agent = AGENTS[(assignee or 1) - 1]
        messages.append({
            "ticket_id": ticket_id, "direction": "out", "from_addr": "support@example.com",
            "from_name": "Agent", "to_addrs": email, "cc_addrs": "",
            "subject": f"[#{number}] {subject}", "date": first_response,
            "message_id": f"<r{number}@example.com>", "in_reply_to": f"<m{number}@x>",
            "references": "", "text": body(rng, rng.randint(150, 600), False),
            "text_display": "", "html": "", "reply_to": f"support+{number}@example.com",
            "author": agent, "authenticity": "", "created_at": first_response})
        events.append({"ticket_id": ticket_id, "at": updated, "actor": agent,
                       "field": "status", "old": "new", "new": status})
    if rng.random() < 0.08:
        participants.append({"ticket_id": ticket_id, "email": f"kollege{i}@firma{i % 50}.de",
                             "name": "", "role": "cc"})
    return {
        "id": ticket_id, "number": number, "subject": subject, "status": status,
        "request_type": request_type, "priority": PRIORITY_FOR_TYPE[request_type],
        "priority_explicit": False, "channel": channel, "requester_id": customer + 1,
        "organisation_id": customer_org(customer), "assignee_id": assignee,
        "group_id": group,
        "category": rng.choice(CATEGORIES) if rng.random() < 0.6 else None,
        "language": "en" if customer % 10 == 0 else "de", "created_at": created,
        "updated_at": updated, "solved_at": solved_at, "closed_at": closed_at,
        "pending_since": pending_since, "reminders_sent": 0,
        "first_response_at": first_response,
    }


def prepare_database(path: Path, count: int, cache: Path | None) -> str:
    """Fill `path`, or copy a fresh enough cached fill there."""
    cached = None
    if cache is not None:
        cached = cache / f"api-{db.SCHEMA_REVISION}-v{FILL_VERSION}-{count}.sqlite3"
        if cached.exists() and time.time() - cached.stat().st_mtime < CACHE_HOURS * 3600:
            shutil.copyfile(cached, path)
            return f"cached {cached}"
    started = time.perf_counter()
    log(f"filling {count:,} tickets into {path} ...")
    fill(f"sqlite:///{path}", count, random.Random(14))
    took = f"filled in {time.perf_counter() - started:.1f} s"
    if cached is not None:
        cache.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        shutil.copyfile(path, partial)
        partial.replace(cached)
        took += f", cached as {cached}"
    return took


# -- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited early ({process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} on port {port} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    def dispatch(ids: list[int]) -> None:  # the CLI's App.hand_over
        hand_over(settings, ids)

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


def outbox_states(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT state, count(*) FROM outbox GROUP BY state")).all())


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
        data = Path(tmp) / "var"
        data.mkdir()
        config = Path(tmp) / "maildesk.toml"
        config.write_text(CONFIG, encoding="utf-8")
        how = prepare_database(data / "maildesk.sqlite3", args.tickets,
                               None if args.no_cache else args.cache)
        size = (data / "maildesk.sqlite3").stat().st_size / 1e6
        if args.analyze:
            with sqlite3.connect(data / "maildesk.sqlite3") as conn:
                conn.execute("ANALYZE")
            how += "; ANALYZE run"
        print(f"database: {size:.0f} MB ({how})", flush=True)
        relay_port, web_port = free_port(), free_port()
        env = {**os.environ, "MAILDESK_CONFIG": str(config), "MAILDESK_DATA_DIR": str(data),
               "MAILDESK_SMTP__PORT": str(free_port()), "MAILDESK_WEB__PORT": str(web_port),
               "MAILDESK_RELAY__PORT": str(relay_port)}
        settings = load_settings(config, env)
        engine = db.make_engine(settings.database_url)
        db.require_schema(engine, settings.database_url)
        load_secret(settings)  # made here, before serve and this process race for it
        token, _ = create_token(engine, settings, ME, name="bench")  # `maildesk tokens create`
        relay = subprocess.Popen([sys.executable, "-c", SINK, str(relay_port)])
        server = None
        serve_log = Path(tmp) / "serve.log"  # at the configured level, as journald gets it
        try:
            wait_port(relay_port, relay, "SMTP sink")
            with serve_log.open("wb") as out:
                server = subprocess.Popen([sys.executable, "-m", "maildesk", "serve"], env=env,
                                          cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            wait_port(web_port, server, "maildesk serve")
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
            if server is not None:
                server.terminate()
                server.wait(timeout=60)
            relay.terminate()
            relay.wait(timeout=10)
            engine.dispose()
            lines = serve_log.read_text(errors="replace").splitlines() if serve_log.exists() else []
            trouble = [line for line in lines if " WARNING " in line or " ERROR " in line
                       or line.startswith("Traceback")]
            log(f"serve log: {len(lines)} lines, {len(trouble)} warnings or errors")
            died = server is None or server.returncode not in (0, -15)
            for line in trouble[:10] or (lines[-20:] if died else []):
                log(f"  serve: {line}")
    report(args, lists, writes)
    print(f"notifications of the replies (outbox by state): {states}")
    print(f"wall time {time.perf_counter() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
