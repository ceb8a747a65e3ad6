"""The Dramatiq broker: Redis by URL, or the embedded in-memory broker.

Producers only put outbox ids on the queue; the outbox table is the durable
record, so a lost enqueue (broker down, crash after the commit) costs a
sweep interval, never a mail. That is why the embedded default can be
dramatiq's in-memory broker with the actors running inside `maildesk
serve`: same actors, same claim-and-send path as production.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import suppress

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from maildesk.config import Settings

log = logging.getLogger(__name__)

QUEUE = "maildesk"
ACTOR = "send_outbox"


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.broker.url:
        return RedisBroker(url=settings.broker.url, namespace="maildesk")
    return StubBroker()


def embedded(settings: Settings) -> bool:
    return not settings.broker.url


def declare(broker: dramatiq.Broker, fn: Callable[[int], None] | None = None) -> dramatiq.Actor:
    """The send actor on this broker. Producers declare it without a
    function (they only enqueue); workers with the real one."""
    if ACTOR in broker.actors:
        return broker.get_actor(ACTOR)

    def not_here(outbox_id: int) -> None:  # pragma: no cover - producers never run it
        raise RuntimeError("send_outbox runs in a worker, not in a producer")

    return dramatiq.Actor(fn or not_here, broker=broker, actor_name=ACTOR, queue_name=QUEUE,
                          priority=0, options={"max_retries": 0, "time_limit": 600_000})


def dispatch(broker: dramatiq.Broker, ids: Iterable[int]) -> int:
    """Enqueue ids; a broker error is logged, not raised (the sweep will
    find the rows). Returns how many were enqueued."""
    actor = declare(broker)
    sent = 0
    for outbox_id in ids:
        try:
            actor.send(outbox_id)
            sent += 1
        except Exception as exc:  # noqa: BLE001 — the outbox row is the truth
            log.warning("could not enqueue outbox %s (%s); the sweep will send it", outbox_id, exc)
            break
    return sent


def hand_over(settings: Settings, ids: Iterable[int]) -> None:
    """After a commit outside `serve` (pipe, CLI): enqueue on Redis. With the
    embedded broker nothing can be reached from here: the commit woke serve
    (process/wakeup.py), which dispatches the rows within a second."""
    wanted = list(ids)
    if not wanted or embedded(settings):
        return
    # The rows are committed: nothing here may fail the caller (`ingest`
    # exiting non-zero makes Postfix bounce a mail that is already a
    # ticket). Whatever goes wrong, the outbox sweep sends them.
    try:
        broker = make_broker(settings)
    except Exception as exc:
        log.warning("could not reach the broker (%s: %s); the outbox sweep will send "
                    "outbox %s", type(exc).__name__, exc, ", ".join(map(str, wanted)))
        log.debug("the broker's error", exc_info=True)
        return
    try:
        dispatch(broker, wanted)
    finally:
        with suppress(Exception):
            broker.close()
