"""Group commit of the spool: concurrent sessions share one transaction.

A listener's 250 waits only for the commit that holds its mail; while one
commit runs, the next sessions queue up and are committed together (one
fsync for many mails). Used by `maildesk serve`'s SMTP/LMTP listeners.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from maildesk.accept.spool import Accepted, Incoming, accept

#: Most mails one commit of the spool covers.
ACCEPT_BATCH = 64


class GroupCommitter:
    """Accept requests from concurrent sessions, committed together.

    Each session awaits its own future; one database transaction stores
    everything that queued up meanwhile. Durability per mail is unchanged
    (its 250 comes after the commit that holds it), the fsyncs are shared.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: asyncio.Queue[tuple[Incoming, asyncio.Future[Accepted]]] = asyncio.Queue()

    async def store(self, incoming: Incoming) -> Accepted:
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        await self.queue.put((incoming, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < ACCEPT_BATCH:
                batch.append(self.queue.get_nowait())
            try:
                results = await asyncio.to_thread(accept, self.engine, [i for i, _ in batch])
            except Exception as exc:  # noqa: BLE001 — every waiting session answers 451
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
