"""Mail another process writes reaches a running serve within a second
(issue 17): `maildesk ingest` (the pipe transport), `maildesk tickets
reply`, `maildesk outbox retry`, and a writer that stored a mail and
stopped before processing it.

serve runs with its sweeps and its drainer set to a minute, so only the
wakeup (PostgreSQL LISTEN/NOTIFY, SQLite's poll of the newest ids and of
its data version) can
explain a notification at the sink within 3 s; before it, the CLI's rows
waited 10-14 s for the outbox sweep. Every notification arrives once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from maildesk.process.wakeup import (
    INBOUND,
    OUTBOX,
    Wakeup,
    kinds_of,
    moved,
    written,
)
from tests.conftest import REPO, Desk
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink

#: How long a notification written elsewhere may take to reach the sink.
WITHIN = 3.0
#: Long enough that no sweep or drain round falls into a test.
SLOW = "60"


def _run(desk: Desk, args: list[str], stdin: bytes | None = None) -> tuple[str, float]:
    """A maildesk command as its own process; (stdout, monotonic time it ended)."""
    done = subprocess.run([sys.executable, "-m", "maildesk", *args], input=stdin,
                          env={**os.environ, **desk.env}, cwd=REPO, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode(), time.monotonic()


def _arrives(sink: Sink, address: str, subject: str, since: float) -> float:
    """Seconds from `since` until a mail with `subject` reached `address`."""
    wait_until(lambda: any(subject in str(m["Subject"]) for m in sink.to(address)),
               timeout=15, step=0.01)
    return time.monotonic() - since


#: A writer that stores a mail and ends before processing it (a pipe
#: delivery killed between its two commits), announcing as the CLI does.
STORE_ONLY = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from maildesk.accept.spool import Incoming, accept
    from maildesk.config import load_settings
    from maildesk.db import make_engine
    from maildesk.process.wakeup import announce

    settings = load_settings(Path(os.environ["MAILDESK_CONFIG"]))
    engine = make_engine(settings.database_url)
    announce(engine)
    accept(engine, [Incoming(sys.stdin.buffer.read(), "pipe", None, ("support@example.com",))])
""")


def test_mail_written_elsewhere_reaches_serve_within_a_second(desk: Desk, sink: Sink,
                                                              tmp_path: Path) -> None:
    serve = start_serve(desk.env, tmp_path, MAILDESK_RELAY__PORT=str(sink.port),
                        MAILDESK_WORKER__SWEEP_SECONDS=SLOW,
                        MAILDESK_SERVE__DRAIN_INTERVAL_SECONDS=SLOW)
    try:
        # 1. the pipe transport: a ticket at once, its acknowledgement within 3 s
        out, ended = _run(desk, ["ingest", "--json", "--recipient", "support@example.com"],
                          make_mail(subject="Drucker streikt", sender="Erika <erika@kunde.de>"))
        number = json.loads(out.strip().splitlines()[-1])["ticket"]
        assert desk.show(number)["subject"] == "Drucker streikt"
        took = _arrives(sink, "erika@kunde.de", f"[#{number}] Drucker streikt", ended)
        assert took < WITHIN, f"acknowledgement after {took:.1f} s"

        # 2. an agent's reply from the CLI
        _, ended = _run(desk, ["tickets", "reply", str(number), "--agent", "agent@example.com",
                               "--text", "Bitte starten Sie ihn neu."])
        wait_until(lambda: any("Bitte starten Sie ihn neu." in m.get_body(("plain",))
                               .get_content() for m in sink.to("erika@kunde.de")),
                   timeout=15, step=0.01)
        took = time.monotonic() - ended
        assert took < WITHIN, f"the reply reached the customer after {took:.1f} s"

        # 3. a mail stored and left pending by a writer that stopped: serve
        #    processes it (after the settle second), not at the next drain
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", STORE_ONLY],
                              input=make_mail(subject="Scanner", sender="Jo <jo@kunde.de>"),
                              env={**os.environ, **desk.env}, cwd=REPO, capture_output=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        ended = time.monotonic()
        took = _arrives(sink, "jo@kunde.de", "Scanner", ended)
        assert took < WITHIN, f"a mail left pending was acknowledged after {took:.1f} s " \
                              f"(the writer ran {ended - started:.1f} s)"
        assert [t["subject"] for t in desk.list()].count("Scanner") == 1

        # every notification once: what the outbox sent, and nothing twice
        def all_sent() -> list[dict]:
            rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
            return rows if rows and all(r["state"] == "sent" for r in rows) else []

        rows = wait_until(all_sent, timeout=15)
        time.sleep(1.0)  # a second enqueue would be sent by now
        ids = Counter(str(r.message["Message-ID"]) for r in sink.received)
        assert [mid for mid, n in ids.items() if n > 1] == [], "a notification was sent twice"
        assert len(sink.received) == len(rows), (len(sink.received), [r["kind"] for r in rows])
    finally:
        assert serve.stop() == 0, serve.output()


def test_a_retried_notification_is_sent_within_a_second(desk: Desk, sink: Sink,
                                                        tmp_path: Path) -> None:
    """`maildesk outbox retry` adds no row, it queues a failed one again: on
    SQLite no id moves, only the data version tells serve."""
    from sqlalchemy import update

    from maildesk.models import Outbox

    number = desk.ingest(make_mail(subject="Rechnung fehlt", sender="Erika <erika@kunde.de>"))[
        1]["ticket"]
    engine = desk.engine()
    with engine.begin() as connection:  # the relay refused them all, attempts exhausted
        connection.execute(update(Outbox.__table__).values(
            state="failed", attempts=8, last_error="554 relay said no"))
    engine.dispose()
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    (ack,) = [r["id"] for r in rows if r["kind"] == "acknowledgement"]
    serve = start_serve(desk.env, tmp_path, MAILDESK_RELAY__PORT=str(sink.port),
                        MAILDESK_WORKER__SWEEP_SECONDS=SLOW,
                        MAILDESK_SERVE__DRAIN_INTERVAL_SECONDS=SLOW)
    try:
        time.sleep(1.5)  # serve has polled a few times: only the retry can wake it
        assert sink.received == []
        out, ended = _run(desk, ["outbox", "retry", str(ack)])
        assert f"{ack}: failed -> queued" in out
        took = _arrives(sink, "erika@kunde.de", f"[#{number}] Rechnung fehlt", ended)
        assert took < WITHIN, f"the retried acknowledgement was sent after {took:.1f} s"
        states = {r["id"]: r["state"] for r in json.loads(
            desk.cli("outbox", "list", "--json").stdout)}
        assert states.pop(ack) == "sent"
        assert set(states.values()) == {"failed"}  # the others stay as they were
    finally:
        assert serve.stop() == 0, serve.output()


# -- the pure parts -----------------------------------------------------------

def test_which_statements_wake_serve() -> None:
    assert written("INSERT INTO outbox (kind, to_addrs) VALUES (%(kind)s, %(to)s)") == OUTBOX
    assert written('UPDATE "outbox" SET state=%(state)s WHERE outbox.id = %(id)s') == OUTBOX
    assert written("insert into inbound_mail (raw_hash) values (?)") == INBOUND
    # serve's own processing of an inbound row is no news to serve
    assert written("UPDATE inbound_mail SET state=? WHERE id=?") is None
    assert written("INSERT INTO outbox_archive (id) VALUES (1)") is None
    assert written("SELECT id FROM outbox") is None
    assert written("INSERT INTO ticket (subject) VALUES ('outbox')") is None


def test_payloads_and_polls_name_what_to_look_at() -> None:
    assert kinds_of("outbox") == {OUTBOX}
    assert kinds_of("inbound,outbox") == {OUTBOX, INBOUND}
    assert kinds_of("") == {OUTBOX, INBOUND}
    assert kinds_of("nonsense") == set()
    assert moved((5, 9, 3), (5, 9, 3)) == set()
    assert moved((5, 9, 3), (6, 9, 4)) == {OUTBOX}
    assert moved((5, 9, 3), (5, 10, 4)) == {OUTBOX, INBOUND}
    # a commit that added no row: `outbox retry` queued a failed one again
    assert moved((5, 9, 3), (5, 9, 4)) == {OUTBOX}


def test_serves_own_dispatches_are_not_dispatched_again(desk: Desk) -> None:
    """A row serve put on the broker itself is not put there again by a
    wakeup while it still waits in the queue; one written elsewhere is,
    once."""
    import asyncio

    from maildesk.actions import agent as agent_actions

    number = desk.ingest(make_mail(subject="Zwei Zeilen"))[1]["ticket"]
    own: list[int] = []
    agent_actions.reply(desk.engine(), desk.settings, number, "agent@example.com", "eins",
                        dispatch=own.extend)
    elsewhere: list[int] = []
    agent_actions.reply(desk.engine(), desk.settings, number, "agent@example.com", "zwei",
                        dispatch=elsewhere.extend)
    dispatched: list[int] = []
    wakeup = Wakeup(desk.engine(), dispatched.extend, lambda ids: None)
    wakeup.note(own)

    async def twice() -> None:
        await wakeup.look({OUTBOX})
        await wakeup.look({OUTBOX})

    asyncio.run(twice())
    assert set(elsewhere) <= set(dispatched) and not set(own) & set(dispatched)
    assert len(dispatched) == len(set(dispatched)), "dispatched twice"
