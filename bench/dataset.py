"""The 100,000-ticket SQLite database and the `maildesk serve` around it,
shared by the benchmarks that measure serve's pages and API (bench/api.py,
bench/portal.py): one builder, one cache, so that their figures are about
the same data.

- `prepare_database` fills a database by bulk inserts (customers in
  organisations, agents and groups of CONFIG, tickets with a realistic
  spread of status, assignee, group, channel, request type and category
  over two years, one customer mail per ticket and our reply on every
  ticket past "new", their events, some CCs; the SLA escalation marks a
  desk that has been running has already set, see `settle`), or copies a
  cached fill
  (keyed by schema revision, FILL_VERSION and size, reused for
  CACHE_HOURS) under the cache folder.
- `serve_environment` and `serving` run `maildesk serve` as it is run in
  production: a subprocess with the embedded broker, its worker sending
  to a no-op SMTP sink as relay, its log at the configured level in a
  file, checked for warnings and errors when it stops.

Imported as `bench.dataset` (the scripts put the repository on the path:
bench/threading.py is named like the stdlib module, so this folder itself
is kept off it).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from maildesk import db
from maildesk.config import PRIORITY_FOR_TYPE, load_settings
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
from maildesk.schedule import escalation
from maildesk.schedule.sweep import run_sweep

REPO = Path(__file__).resolve().parent.parent
#: Bump when the fill changes (the cache key).
FILL_VERSION = 2
#: The cache is reused this long: pending and solved times are set relative
#: to the fill, and serve's sweep must find nothing due.
CACHE_HOURS = 48
CHUNK = 10_000

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
    settle(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def settle(engine: Any) -> None:
    """Mark the tickets whose SLA escalation a running desk would have sent
    long ago (the sweep's own dry run says which), without their mails.
    Without it, serve's first sweep in the bench escalates ~9,500 of the
    100,000 two-year-old tickets and its worker spends the measured minutes
    sending those mails: the figures would be about that backlog, not about
    the pages and the API on a desk in its steady state."""
    started = time.perf_counter()
    report = run_sweep(engine, load_settings(None, {}), b"bench" * 8, utcnow(), dry_run=True)
    level = {kind: name for name, kind in escalation.KINDS.items()}
    marks = [{"n": a["ticket"], "level": level[a["action"]]} for a in report.actions
             if a["action"] in level]
    with engine.begin() as conn:
        conn.execute(text("UPDATE ticket SET sla_alerted = :level WHERE number = :n"), marks)
    log(f"  settled: {len(marks):,} SLA escalations marked as sent long ago "
        f"({time.perf_counter() - started:.1f} s)")


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



def outbox_states(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT state, count(*) FROM outbox GROUP BY state")).all())


def serve_environment(tmp: Path) -> tuple[Path, Path, dict[str, str], int, int]:
    """A data dir and config file under `tmp` and the environment `maildesk
    serve` runs with (free ports for SMTP, web and the relay): (data dir,
    config, env, web port, relay port)."""
    data = tmp / "var"
    data.mkdir()
    config = tmp / "maildesk.toml"
    config.write_text(CONFIG, encoding="utf-8")
    relay_port, web_port = free_port(), free_port()
    env = {**os.environ, "MAILDESK_CONFIG": str(config), "MAILDESK_DATA_DIR": str(data),
           "MAILDESK_SMTP__PORT": str(free_port()), "MAILDESK_WEB__PORT": str(web_port),
           "MAILDESK_RELAY__PORT": str(relay_port)}
    return data, config, env, web_port, relay_port


@contextmanager
def serving(env: dict[str, str], web_port: int, relay_port: int,
            serve_log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`maildesk serve` (and the no-op relay its worker sends to) while the
    block runs; afterwards stopped, and its log's warnings and errors
    printed (its last lines when it died)."""
    relay = subprocess.Popen([sys.executable, "-c", SINK, str(relay_port)])
    server = None
    try:
        wait_port(relay_port, relay, "SMTP sink")
        with serve_log.open("wb") as out:
            server = subprocess.Popen([sys.executable, "-m", "maildesk", "serve"], env=env,
                                      cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        wait_port(web_port, server, "maildesk serve")
        yield server
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        relay.terminate()
        relay.wait(timeout=10)
        lines = serve_log.read_text(errors="replace").splitlines() if serve_log.exists() else []
        trouble = [line for line in lines if " WARNING " in line or " ERROR " in line
                   or line.startswith("Traceback")]
        log(f"serve log: {len(lines)} lines, {len(trouble)} warnings or errors")
        died = server is None or server.returncode not in (0, -15)
        for line in trouble[:10] or (lines[-20:] if died else []):
            log(f"  serve: {line}")
