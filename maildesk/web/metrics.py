"""Prometheus metrics of one `maildesk serve`, on a private registry.

Each daemon owns its own `CollectorRegistry` (never prometheus_client's
global default one), so several daemons in one test process never clash.

Three kinds of series:

- Counters the listeners already keep (`smtp.ListenerStats`), read at
  scrape time by `ListenerCollector`: the SMTP/LMTP code needs no metrics
  code of its own.
- Each IMAP account's state (`AccountCollector`, from the pollers'
  `status()`): connected, lease held, polls, errors, last successful poll.
- `maildesk_ingest_seconds`, observed by the daemon's Processor: from the
  moment a listener hands a mail over to the commit of its ticket.
- Gauges from the database (`DatabaseCollector`): four grouped counts,
  queried once per scrape by the web server (in a thread, with a timeout)
  and handed to `render`. A failed query leaves those gauges out of that
  scrape and counts `maildesk_scrape_errors_total`; the scrape still
  answers 200.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from maildesk.accept.smtp import ListenerStats
from maildesk.models import CsatRating, InboundMail, Outbox, Ticket
from maildesk.tickets.csat import SCALE
from maildesk.tickets.lifecycle import STATUSES as TICKET_STATUSES
from maildesk.tickets.outbox import STATES as OUTBOX_STATES

#: Accept -> ticket committed. A mail usually takes well under a second;
#: the long buckets show a backlog (processors busy, database slow).
INGEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Inbound states without an outcome that the gauges always show (0 if none).
INBOUND_STATES = ("pending", "failed")
#: The label for an inbound row without an outcome (pending, failed).
NO_OUTCOME = "none"
#: The scores a rating can have, as labels.
CSAT_SCORES = tuple(str(score) for score in range(1, len(SCALE) + 1))
#: Longest a scrape's database queries may run on PostgreSQL.
STATEMENT_TIMEOUT_MS = 5000

ListenerSource = Callable[[], Iterable[tuple[str, ListenerStats]]]


class AccountStatusLike(Protocol):
    """What the metrics read of an IMAP account (accept/imap.AccountStatus)."""

    name: str
    connected: bool
    lease_held: bool
    healthy: bool
    polls: int
    errors: int
    last_poll: datetime | None


AccountSource = Callable[[], Iterable[AccountStatusLike]]


@dataclass
class DatabaseSnapshot:
    """What the database held at one scrape."""

    inbound: dict[tuple[str, str], int] = field(default_factory=dict)  # (state, outcome)
    tickets: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    csat: dict[str, int] = field(default_factory=dict)  # score ("1".."5") -> ratings


def query_database(engine: Engine) -> DatabaseSnapshot:
    """Four GROUP BY counts in one short read transaction. Blocking: the
    web server runs it in a thread."""
    inbound = InboundMail.__table__.c  # type: ignore[attr-defined]
    ticket = Ticket.__table__.c  # type: ignore[attr-defined]
    outbox = Outbox.__table__.c  # type: ignore[attr-defined]
    rating = CsatRating.__table__.c  # type: ignore[attr-defined]
    snapshot = DatabaseSnapshot()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        for state, outcome, count in connection.execute(
            select(inbound.state, inbound.outcome, func.count()).group_by(inbound.state,
                                                                          inbound.outcome)
        ):
            snapshot.inbound[(state, outcome or NO_OUTCOME)] = count
        for status, count in connection.execute(
            select(ticket.status, func.count()).group_by(ticket.status)
        ):
            snapshot.tickets[status] = count
        for state, count in connection.execute(
            select(outbox.state, func.count()).group_by(outbox.state)
        ):
            snapshot.outbox[state] = count
        for score, count in connection.execute(
            select(rating.score, func.count()).group_by(rating.score)
        ):
            snapshot.csat[str(score)] = count
    return snapshot


class ListenerCollector(Collector):
    """The listeners' own counters, read when Prometheus scrapes."""

    #: ListenerStats attribute -> the `reason` label of refused mail.
    REFUSED = (("refused_rcpt", "rcpt"), ("refused_size", "size"), ("tempfailed", "tempfail"),
               ("refused_connections", "connection_limit"))

    def __init__(self, listeners: ListenerSource) -> None:
        self.listeners = listeners

    def collect(self) -> Iterator[Metric]:
        sessions = CounterMetricFamily("maildesk_smtp_sessions",
                                       "SMTP/LMTP sessions opened, by listener",
                                       labels=["listener"])
        accepted = CounterMetricFamily("maildesk_mails_accepted",
                                       "Mails acknowledged (250) and stored, by source",
                                       labels=["source"])
        duplicates = CounterMetricFamily("maildesk_mails_duplicate",
                                         "Mails acknowledged that were already stored "
                                         "(redelivery), by source", labels=["source"])
        refused = CounterMetricFamily("maildesk_mails_refused",
                                      "Recipients, mails or connections refused, by reason",
                                      labels=["reason"])
        active = GaugeMetricFamily("maildesk_smtp_sessions_active",
                                   "SMTP/LMTP sessions open now, by listener",
                                   labels=["listener"])
        totals: dict[str, int] = {}
        for name, stats in self.listeners():
            sessions.add_metric([name], stats.sessions)
            accepted.add_metric([name], stats.accepted)
            duplicates.add_metric([name], stats.duplicates)
            active.add_metric([name], len(stats.active))
            for attribute, reason in self.REFUSED:
                value = getattr(stats, attribute, None)
                if value is not None:
                    totals[reason] = totals.get(reason, 0) + value
        for reason, value in totals.items():
            refused.add_metric([reason], value)
        yield from (sessions, accepted, duplicates, refused, active)


class DatabaseCollector(Collector):
    """Exposes the snapshot the current scrape fetched (nothing without one)."""

    def __init__(self) -> None:
        self.snapshot: DatabaseSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        inbound = GaugeMetricFamily("maildesk_inbound_mails",
                                    "Stored inbound mails by state and outcome",
                                    labels=["state", "outcome"])
        counts = {**{(state, NO_OUTCOME): 0 for state in INBOUND_STATES}, **snapshot.inbound}
        for (state, outcome), value in sorted(counts.items()):
            inbound.add_metric([state, outcome], value)
        tickets = GaugeMetricFamily("maildesk_tickets", "Tickets by status", labels=["status"])
        for status, value in _with_zeros(TICKET_STATUSES, snapshot.tickets):
            tickets.add_metric([status], value)
        outbox = GaugeMetricFamily("maildesk_outbox", "Outbox rows by state", labels=["state"])
        for state, value in _with_zeros(OUTBOX_STATES, snapshot.outbox):
            outbox.add_metric([state], value)
        csat = GaugeMetricFamily("maildesk_csat_ratings",
                                 "Satisfaction ratings by score (1 = sehr unzufrieden, "
                                 "5 = sehr zufrieden)", labels=["score"])
        for score, value in _with_zeros(CSAT_SCORES, snapshot.csat):
            csat.add_metric([score], value)
        yield from (inbound, tickets, outbox, csat)


class AccountCollector(Collector):
    """The IMAP pollers' state, read when Prometheus scrapes. A standby
    instance shows lease_held 0 and connected 0: only the holder polls."""

    def __init__(self, accounts: AccountSource) -> None:
        self.accounts = accounts

    def collect(self) -> Iterator[Metric]:
        labels = ["account"]
        up = GaugeMetricFamily("maildesk_imap_up", "1 unless the account is failing (as /healthz)",
                               labels=labels)
        connected = GaugeMetricFamily("maildesk_imap_connected",
                                      "1 while this instance has a session open", labels=labels)
        lease = GaugeMetricFamily("maildesk_imap_lease_held",
                                  "1 while this instance holds the account's lease",
                                  labels=labels)
        polls = CounterMetricFamily("maildesk_imap_polls", "Completed polls of the folder",
                                    labels=labels)
        errors = CounterMetricFamily("maildesk_imap_errors",
                                     "Sessions that ended in an error (login, connection, ...)",
                                     labels=labels)
        last = GaugeMetricFamily("maildesk_imap_last_poll_timestamp_seconds",
                                 "When the last poll completed (Unix time; absent: never)",
                                 labels=labels)
        for status in self.accounts():
            name = [status.name]
            up.add_metric(name, 1 if status.healthy else 0)
            connected.add_metric(name, 1 if status.connected else 0)
            lease.add_metric(name, 1 if status.lease_held else 0)
            polls.add_metric(name, status.polls)
            errors.add_metric(name, status.errors)
            if status.last_poll is not None:
                moment = status.last_poll
                if moment.tzinfo is None:  # maildesk keeps naive UTC
                    moment = moment.replace(tzinfo=UTC)
                last.add_metric(name, moment.timestamp())
        yield from (up, connected, lease, polls, errors, last)


def _with_zeros(known: Iterable[str], counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted({**dict.fromkeys(known, 0), **counts}.items())


class DaemonMetrics:
    """The registry of one daemon and the instruments it updates."""

    def __init__(self, listeners: ListenerSource, accounts: AccountSource = list) -> None:
        self.registry = CollectorRegistry()
        self.ingest_seconds = Histogram(
            "maildesk_ingest_seconds",
            "From a listener handing a mail over to its ticket being committed",
            buckets=INGEST_BUCKETS, registry=self.registry,
        )
        self.scrape_errors = Counter(
            "maildesk_scrape_errors",
            "Scrapes whose database gauges could not be read (left out of that scrape)",
            registry=self.registry,
        )
        self.registry.register(ListenerCollector(listeners))
        self.registry.register(AccountCollector(accounts))
        self.database = DatabaseCollector()
        self.registry.register(self.database)

    def render(self, snapshot: DatabaseSnapshot | None) -> bytes:
        """The exposition text; `snapshot` None = the database failed this
        time (counted, its gauges left out). Synchronous and quick: call it
        without awaiting in between, so concurrent scrapes never mix."""
        if snapshot is None:
            self.scrape_errors.inc()
        self.database.snapshot = snapshot
        try:
            return generate_latest(self.registry)
        finally:
            self.database.snapshot = None
