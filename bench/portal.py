"""The portal's pages (issue 16's speed target): "My requests" of a
customer whose organisation has 2,000 tickets in a 100,000-ticket SQLite
database, and a ticket page with 200 messages, p99 < 100 ms.

- The database is bench/dataset.py's (the one bench/api.py measures, from
  the same cache), with the portal's customers added to its copy: one
  organisation (ORGANISATION) whose main contact and colleagues, all
  confirmed, become the requesters of --org-tickets of the tickets spread
  evenly over the two years (their status, dates and texts stay the
  fill's); the plain colleague PLAIN requests a tenth of them and is CC of
  a few of the others. One of PLAIN's tickets gets BIG_PUBLIC public
  messages (in and out by turns, some with attachment rows) and
  BIG_INTERNAL internal notes with files of their own, which the page must
  not show.
- `maildesk serve` runs as in production (a subprocess, bench/dataset.py's
  `serving`); the customers are logged in by a portal_session row written
  directly (the sha256 of a random token, as store/portal.add_session
  keeps it) and send its token as the cookie `maildesk_portal`.
- Every page of PAGES is asked in turn, one request at a time over a
  kept-alive connection, so that each sees the same machine; a request's
  time runs until its whole body is read. Before measuring, each page is
  checked: 200, the tickets on it are ones its customer may see (and as
  many as the page should have), the ticket page shows every public
  message and file and nothing internal. A page marked `optional` (a
  query parameter another change is adding) is measured only when the
  server answers it with something else than its `base` page; otherwise
  it is reported "not yet available".

Prints the load average (other processes share the cores), the row counts,
p50/p95/p99/max per page and the server's CPU per request, and PASS/MISS
against 100 ms at p99. `--py-spy SECONDS` records the serve process with
py-spy while the slowest page is asked (a flame graph SVG and the top
frames).

    python bench/portal.py [--tickets 100000] [--org-tickets 2000]
                           [--requests 300] [--cache DIR | --no-cache]
                           [--py-spy SECONDS]
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
import random
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert, text

from maildesk import db
from maildesk.config import load_settings
from maildesk.models import (
    Attachment,
    Customer,
    Message,
    Organisation,
    OrganisationDomain,
    Participant,
    PortalSessionRow,
    utcnow,
)
from maildesk.secret import load_secret
from maildesk.web.portal.login_rules import hash_token

sys.path.append(os.path.dirname(_HERE))  # the repository: bench.dataset
from bench.dataset import (  # the fill and serve, shared with bench/api.py
    AGENTS,
    body,
    cpu_seconds,
    log,
    prepare_database,
    serve_environment,
    serving,
)

TARGET_MS = 100.0
COOKIE = "maildesk_portal"
DOMAIN = "portal-firma.de"
ORGANISATION = f"Portal Firma GmbH ({DOMAIN})"
MAIN = f"chefin@{DOMAIN}"
PLAIN = f"kollege1@{DOMAIN}"
#: Colleagues besides the main contact (PLAIN is the first of them).
COLLEAGUES = 39
#: The ticket page's ticket: public messages (in and out), internal notes.
BIG_PUBLIC = 200
BIG_INTERNAL = 30
#: Every this many public messages has a file; every internal note has one.
FILE_EVERY = 5
#: A word in every internal note: the ticket page must not contain it.
INTERNAL_MARK = "INTERNVERMERK"
DONE = ("solved", "closed")
PER_PAGE = 25  # web/portal/requests_page.py PER_PAGE: the checks' page size


# -- the portal's customers -----------------------------------------------------------------------


@dataclass
class PortalData:
    organisation_id: int
    customers: dict[str, int]  # "main" / "plain" -> customer id
    big_number: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def add_portal_data(url: str, org_tickets: int, rng: random.Random) -> PortalData:
    """The organisation, its confirmed customers and their tickets, and the
    big ticket's messages, written into the filled database's copy."""
    engine = db.make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        org_id = int(conn.execute(text("SELECT max(id) FROM organisation")).scalar_one()) + 1
        first = int(conn.execute(text("SELECT max(id) FROM customer")).scalar_one()) + 1
        count = int(conn.execute(text("SELECT count(*) FROM ticket")).scalar_one())
        if org_tickets > count:
            raise SystemExit(f"--org-tickets {org_tickets:,} > {count:,} tickets in the database")
        conn.execute(insert(Organisation.__table__), [
            {"id": org_id, "name": ORGANISATION, "ticket_access": "organisation",
             "created_at": now - timedelta(days=800)}])
        conn.execute(insert(OrganisationDomain.__table__), [
            {"organisation_id": org_id, "domain": DOMAIN}])
        emails = [MAIN] + [f"kollege{k}@{DOMAIN}" for k in range(1, COLLEAGUES + 1)]
        conn.execute(insert(Customer.__table__), [
            {"id": first + k, "email": email, "name": f"Portal Kunde {k}",
             "organisation_id": org_id, "role": "main_contact" if k == 0 else "user",
             "info_recipient": False, "language": "de", "confirmed": True,
             "confirmed_at": now - timedelta(days=700), "bouncing": False,
             "created_at": now - timedelta(days=800)}
            for k, email in enumerate(emails)])
        # every step-th ticket, over the whole two years; a tenth each to the
        # main contact and PLAIN, the rest to the other colleagues
        step = count // org_tickets
        ids = [int(i) for i in conn.execute(text(
            "SELECT id FROM ticket ORDER BY id")).scalars()][step // 2::step][:org_tickets]
        owners = []
        for n, ticket_id in enumerate(ids):
            k = 0 if n % 10 == 0 else 1 if n % 10 == 1 else 2 + n % (COLLEAGUES - 1)
            owners.append({"tid": ticket_id, "rid": first + k, "oid": org_id})
        conn.execute(text("UPDATE ticket SET requester_id = :rid, organisation_id = :oid "
                          "WHERE id = :tid"), owners)
        # PLAIN is CC of some of the colleagues' tickets
        cc = [o["tid"] for o in owners if o["rid"] not in (first, first + 1)][::40]
        conn.execute(insert(Participant.__table__), [
            {"ticket_id": t, "email": PLAIN, "name": "", "role": "cc"} for t in cc])
        big = max(o["tid"] for o in owners if o["rid"] == first + 1)
        big_number = _big_ticket(conn, big, rng, now)
    data = PortalData(org_id, {"main": first, "plain": first + 1}, big_number)
    data.counts = counts(engine, data)
    engine.dispose()
    return data


def _big_ticket(conn: Any, ticket_id: int, rng: random.Random, now: Any) -> int:
    """BIG_PUBLIC public messages on the ticket (its own first ones
    included), BIG_INTERNAL internal notes among them; attachment rows."""
    ticket = conn.execute(text("SELECT number, subject, created_at FROM ticket WHERE id = :id"),
                          {"id": ticket_id}).one()
    have = int(conn.execute(text(
        "SELECT count(*) FROM message WHERE ticket_id = :id AND direction IN ('in', 'out')"),
        {"id": ticket_id}).scalar_one())
    public = BIG_PUBLIC - have
    internal_at = set(rng.sample(range(public + BIG_INTERNAL), BIG_INTERNAL))
    start = now - timedelta(days=60)
    total = public + BIG_INTERNAL
    messages, files = [], []
    in_turn = 0
    for i in range(total):
        at = start + (now - timedelta(hours=1) - start) * (i / total)
        if i in internal_at:
            direction, sender, author = "internal", AGENTS[1], AGENTS[1]
            text_ = f"{INTERNAL_MARK}: {body(rng, rng.randint(100, 300), False)}"
        else:
            in_turn += 1
            direction = "in" if in_turn % 2 else "out"
            sender = (PLAIN if in_turn % 7 else MAIN) if direction == "in" else \
                "support@example.com"
            author = sender if direction == "in" else AGENTS[0]
            text_ = body(rng, rng.randint(200, 1200), False)
        messages.append({
            "ticket_id": ticket_id, "direction": direction, "from_addr": sender,
            "from_name": "Portal Kunde" if direction == "in" else "Support",
            "to_addrs": "support@example.com", "cc_addrs": "",
            "subject": f"[#{ticket.number}] {ticket.subject}", "date": at,
            "message_id": f"<big{i}.{ticket.number}@{DOMAIN}>", "in_reply_to": "",
            "references": "", "text": text_, "text_display": "", "html": "", "reply_to": "",
            "author": author, "authenticity": "", "created_at": at})
    conn.execute(insert(Message.__table__), messages)
    rows = conn.execute(text(
        "SELECT id, direction FROM message WHERE ticket_id = :id AND message_id LIKE '<big%' "
        "ORDER BY id"), {"id": ticket_id}).all()
    for n, row in enumerate(rows):
        if row.direction == "internal" or n % FILE_EVERY == 0:
            digest = secrets.token_hex(32)
            files.append({"message_id": row.id, "filename": f"Anhang-{n}.pdf",
                          "content_type": "application/pdf", "size": rng.randint(10_000, 900_000),
                          "sha256": digest, "content_id": "", "inline": False})
    conn.execute(insert(Attachment.__table__), files)
    conn.execute(text("UPDATE ticket SET status = 'open', updated_at = :at, solved_at = NULL, "
                      "closed_at = NULL, pending_since = NULL WHERE id = :id"),
                 {"at": now - timedelta(hours=1), "id": ticket_id})
    return int(ticket.number)


def visible_sql(who: str) -> str:
    """The tickets the customer sees, by store/access.py's rule written out
    for these two (the main contact: the organisation's; PLAIN: own and CC)."""
    own = ("(t.requester_id = :cid OR t.id IN "
           "(SELECT ticket_id FROM participant WHERE email = :email))")
    return f"({own} OR t.organisation_id = :oid)" if who == "main" else own


def counts(engine: Any, data: PortalData) -> dict[str, int]:
    """The rows the pages are about, counted in the database."""
    found: dict[str, int] = {}
    emails = {"main": MAIN, "plain": PLAIN}
    with engine.connect() as conn:
        one = conn.execute
        found["tickets in the database"] = one(text("SELECT count(*) FROM ticket")).scalar_one()
        found["messages in the database"] = one(text("SELECT count(*) FROM message")).scalar_one()
        found["the organisation's tickets"] = one(text(
            "SELECT count(*) FROM ticket WHERE organisation_id = :oid"),
            {"oid": data.organisation_id}).scalar_one()
        for who in ("main", "plain"):
            params = {"cid": data.customers[who], "email": emails[who],
                      "oid": data.organisation_id}
            where = visible_sql(who)
            found[f"{who}: sees, all"] = one(text(
                f"SELECT count(*) FROM ticket t WHERE {where}"), params).scalar_one()
            found[f"{who}: sees, open"] = one(text(
                f"SELECT count(*) FROM ticket t WHERE {where} AND t.status NOT IN "
                "('solved', 'closed')"), params).scalar_one()
        big = {"number": data.big_number}
        for label, condition in (("public messages", "m.direction IN ('in', 'out')"),
                                 ("internal notes", "m.direction = 'internal'")):
            found[f"big ticket: {label}"] = one(text(
                f"SELECT count(*) FROM message m JOIN ticket t ON t.id = m.ticket_id "
                f"WHERE t.number = :number AND {condition}"), big).scalar_one()
            found[f"big ticket: files of {label}"] = one(text(
                f"SELECT count(*) FROM attachment a JOIN message m ON m.id = a.message_id "
                f"JOIN ticket t ON t.id = m.ticket_id WHERE t.number = :number "
                f"AND {condition}"), big).scalar_one()
    return found


def log_in(engine: Any, customer_id: int) -> str:
    """A live portal session as store/portal.add_session writes it; the
    token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(PortalSessionRow.__table__), {
            "token_hash": hash_token(token), "customer_id": customer_id, "created_at": now,
            "last_seen_at": now, "expires_at": now + timedelta(days=14), "revoked_at": None})
    return token


# -- the pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A page to measure: `who` asks for `path` ({big}: the big ticket's
    number). `kind` "list" or "ticket" says how it is checked; a list's
    `status`, `page` and `scope` what it should show: the customer's own
    tickets ("own"), the organisation's ("organisation"), or either
    ("either": "My requests" of a main contact shows the organisation's
    tickets before the tabs came, their own in the "mine" tab after).
    `optional`: measured only when the server answers it differently from
    `base` (a parameter not yet there is ignored or refused)."""

    label: str
    who: str  # "main" (the main contact) / "plain" (PLAIN)
    path: str
    kind: str = "list"
    status: str = "open"
    page: int = 1
    scope: str = "own"
    optional: bool = False
    base: str | None = None


ORG = "/portal/?tab=organisation"
#: Add a page here; an optional one with the page it must differ from.
#: The organisation tab's pages are right without the tabs too (the
#: parameter is ignored and "My requests" is the organisation's).
PAGES: list[Page] = [
    Page("colleague: open requests", "plain", "/portal/"),
    Page("colleague: all", "plain", "/portal/?status=all", status="all"),
    Page("main contact: open requests", "main", "/portal/", scope="either"),
    Page("main contact: organisation, open", "main", ORG, scope="organisation"),
    Page("main contact: organisation, all", "main", f"{ORG}&status=all", status="all",
         scope="organisation"),
    Page("main contact: organisation, all, p. 40", "main", f"{ORG}&status=all&page=40",
         status="all", page=40, scope="organisation"),
    Page("main contact: ticket, 200 messages", "main", "/portal/tickets/{big}", kind="ticket"),
    Page("colleague: ticket, 200 messages", "plain", "/portal/tickets/{big}", kind="ticket"),
    Page("main contact: organisation, q=drucker", "main", f"{ORG}&status=all&q=drucker",
         status="all", scope="organisation", optional=True, base=f"{ORG}&status=all"),
    Page("colleague: all, q=drucker", "plain", "/portal/?status=all&q=drucker",
         status="all", optional=True, base="/portal/?status=all"),
]

_TICKET_LINK = re.compile(r'href="/portal/tickets/(\d+)"')
_MESSAGE = '<article class="message'
_FILE_LINK = re.compile(r'href="/portal/attachments/\d+"')
_CSRF = re.compile(r'value="[A-Za-z0-9_.:=-]{20,}"')


class Client:
    """One customer's browser: their cookie, one kept-alive connection, no
    redirects followed (a redirect to the login is a failed check)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Cookie": f"{COOKIE}={token}"}

    async def get(self, path: str) -> tuple[float, int, str]:
        start = time.perf_counter()
        async with self.session.get(self.base + path, headers=self.headers,
                                    allow_redirects=False) as response:
            data = await response.read()
        return (time.perf_counter() - start) * 1000, response.status, data.decode()


def visible_numbers(engine: Any, data: PortalData, who: str, scope: str,
                    status: str) -> set[int]:
    """The numbers of the tickets `who` sees in `scope` (own / organisation)."""
    where = visible_sql("main" if scope == "organisation" else "plain")
    if status == "open":
        where += " AND t.status NOT IN ('solved', 'closed')"
    params = {"cid": data.customers[who], "email": MAIN if who == "main" else PLAIN,
              "oid": data.organisation_id}
    with engine.connect() as conn:
        return set(conn.execute(text(f"SELECT number FROM ticket t WHERE {where}"),
                                params).scalars())


def check(engine: Any, data: PortalData, page: Page, status: int, html: str) -> str:
    """What the page shows, for the report; SystemExit when it is wrong."""
    if status != 200:
        raise SystemExit(f"{page.label}: HTTP {status} {html[:300]!r}")
    if page.kind == "ticket":
        shown, files = html.count(_MESSAGE), len(_FILE_LINK.findall(html))
        want = data.counts["big ticket: public messages"]
        want_files = data.counts["big ticket: files of public messages"]
        if shown != want or files != want_files or INTERNAL_MARK in html:
            raise SystemExit(f"{page.label}: {shown} messages, {files} files shown; "
                             f"expected {want} and {want_files}, no internal note")
        return f"{shown} messages, {files} files"
    numbers = list(dict.fromkeys(int(n) for n in _TICKET_LINK.findall(html)))
    scopes = ("own", "organisation") if page.scope == "either" else (page.scope,)
    for scope in scopes:
        allowed = visible_numbers(engine, data, page.who, scope, page.status)
        rows = max(0, min(PER_PAGE, len(allowed) - (page.page - 1) * PER_PAGE))
        if set(numbers) <= allowed and (page.optional or len(numbers) == rows):
            return f"{len(numbers)} of {len(allowed):,} rows"
    raise SystemExit(f"{page.label}: {len(numbers)} tickets on the page, not those of "
                     f"{' or '.join(scopes)} (expected {rows} of {len(allowed):,})")


def same_page(first: str, second: str) -> bool:
    """The same listing, but for the CSRF values (fresh on every answer)."""
    return _CSRF.sub("", first) == _CSRF.sub("", second)


@dataclass
class Result:
    page: Page
    path: str
    shows: str = ""
    size: int = 0
    times: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    unavailable: str = ""


async def prepare_pages(clients: dict[str, Client], engine: Any,
                        data: PortalData) -> list[Result]:
    results = []
    for page in PAGES:
        result = Result(page, page.path.format(big=data.big_number))
        client = clients[page.who]
        for _ in range(3):  # warm-up
            _, status, html = await client.get(result.path)
        if page.optional:
            if status != 200:
                result.unavailable = f"not yet available (HTTP {status})"
            elif page.base is not None:
                _, _, base_html = await client.get(page.base.format(big=data.big_number))
                if same_page(html, base_html):
                    result.unavailable = "not yet available (the parameter is ignored)"
        if not result.unavailable:
            result.shows = check(engine, data, page, status, html)
            result.size = len(html.encode())
        results.append(result)
    return results


async def measure(base: str, tokens: dict[str, str], engine: Any, data: PortalData,
                  requests: int, server_pid: int) -> list[Result]:
    jar = aiohttp.DummyCookieJar()  # the session cookie is sent by hand, CSRF ones dropped
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        clients = {who: Client(session, base, token) for who, token in tokens.items()}
        results = await prepare_pages(clients, engine, data)
        live = [r for r in results if not r.unavailable]
        for n in range(requests):
            for result in live:
                before = cpu_seconds(server_pid)
                elapsed, status, _ = await clients[result.page.who].get(result.path)
                result.server_cpu += cpu_seconds(server_pid) - before
                if status != 200:
                    raise SystemExit(f"{result.page.label}: HTTP {status}")
                result.times.append(elapsed)
            if (n + 1) % 100 == 0:
                log(f"  {n + 1:,}/{requests:,} requests per page")
    return results


# -- reporting ------------------------------------------------------------------------------------


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


def report(results: list[Result], data: PortalData) -> bool:
    print("\nrows:")
    for label, value in data.counts.items():
        print(f"  {label:<40} {value:>9,}")
    print(f"  the big ticket is #{data.big_number}")
    print(f"\n{'page':<38} {'shows':<24} {'KB':>5} {'p50':>7} {'p95':>7} {'p99':>7} "
          f"{'max':>7} {'cpu':>6}  (ms; cpu: serve's per request)")
    met = True
    verdicts = []
    for r in results:
        if r.unavailable:
            print(f"{r.page.label:<38} {r.unavailable}")
            continue
        t = r.times
        print(f"{r.page.label:<38} {r.shows:<24} {r.size / 1024:5.0f} "
              f"{statistics.median(t):7.1f} {pct(t, 0.95):7.1f} {pct(t, 0.99):7.1f} "
              f"{max(t):7.1f} {r.server_cpu / len(t) * 1000:6.1f}")
        ok = pct(t, 0.99) < TARGET_MS
        met &= ok
        verdicts.append(f"{'PASS' if ok else 'MISS'}  {r.page.label}: p99 "
                        f"{pct(t, 0.99):.1f} ms < {TARGET_MS:.0f} ms")
    print()
    for line in verdicts:
        print(line)
    return met


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording the serve process (an SVG flame graph at `out`)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found: no profile")
        return None
    return subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200",
                             "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def profile(base: str, token: str, path: str, pid: int, seconds: float,
                  out: Path) -> None:
    spy = py_spy(pid, seconds, out)
    if spy is None:
        return
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        client = Client(session, base, token)
        while time.monotonic() < deadline and spy.poll() is None:
            await client.get(path)
    spy.wait(timeout=60)
    print(f"py-spy flame graph of serve while {path} was asked: {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--org-tickets", type=int, default=2000,
                        help="the organisation's tickets (of --tickets)")
    parser.add_argument("--requests", type=int, default=300, help="requests per page")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "maildesk-bench", help="where filled databases are kept")
    parser.add_argument("--no-cache", action="store_true", help="always fill afresh")
    parser.add_argument("--py-spy", type=float, default=0, metavar="SECONDS",
                        help="record serve with py-spy while the slowest page is asked")
    args = parser.parse_args()
    wall = time.perf_counter()
    print(f"portal: {args.tickets:,} tickets, {args.org_tickets:,} of one organisation, "
          f"{args.requests:,} requests per page, SQLite; {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="maildesk-portal-") as tmp:
        data_dir, config, env, web_port, relay_port = serve_environment(Path(tmp))
        path = data_dir / "maildesk.sqlite3"
        how = prepare_database(path, args.tickets, None if args.no_cache else args.cache)
        started = time.perf_counter()
        data = add_portal_data(f"sqlite:///{path}", args.org_tickets, random.Random(16))
        how += f"; the portal's customers added in {time.perf_counter() - started:.1f} s"
        print(f"database: {path.stat().st_size / 1e6:.0f} MB ({how})", flush=True)
        settings = load_settings(config, env)
        engine = db.make_engine(settings.database_url)
        db.require_schema(engine, settings.database_url)
        load_secret(settings)  # made here, before serve and this process race for it
        tokens = {who: log_in(engine, cid) for who, cid in data.customers.items()}
        base = f"http://127.0.0.1:{web_port}"
        try:
            with serving(env, web_port, relay_port, Path(tmp) / "serve.log") as server:
                log(f"measuring {len(PAGES)} pages, {args.requests:,} requests each, in turn")
                results = asyncio.run(measure(base, tokens, engine, data, args.requests,
                                              server.pid))
                if args.py_spy > 0:
                    slowest = max((r for r in results if r.times),
                                  key=lambda r: pct(r.times, 0.99))
                    out = Path.cwd() / "portal-profile.svg"
                    asyncio.run(profile(base, tokens[slowest.page.who], slowest.path,
                                        server.pid, args.py_spy, out))
        finally:
            engine.dispose()
    report(results, data)
    print(f"\n{load()} at the end; wall time {time.perf_counter() - wall:.0f} s")
    return 0  # a MISS is a figure, not a failure (the checks exit non-zero)


if __name__ == "__main__":
    sys.exit(main())
