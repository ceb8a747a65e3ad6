"""SMTP and LMTP listeners (aiosmtpd): the network side of the Accept stage.

The handler does three things only: refuse recipients that are not ours
(never an open relay), hand the raw message to the spool, and answer 250
once the spool has committed it. Any internal error answers 451 4.3.0 so the
sending MTA retries; aiosmtpd's own answer to an unhandled exception would
be a permanent 500 and the sender would bounce the customer's mail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from maildesk.accept.spool import Accepted, Incoming
from maildesk.config import ConfigError

log = logging.getLogger(__name__)

#: Mail lines longer than RFC 5321's 1,000 are taken, not refused: broken
#: generators write whole HTML documents on one line, and the customer is
#: not to blame. The raw bytes are stored as they came.
LINE_LIMIT = 1024 * 1024

# The replies maildesk gives a sending MTA, named (aiosmtpd's own, like
# 552 for SIZE, are counted in `push`). `code()` gives the number.
#: RCPT for one of our addresses.
RCPT_OK = "250 2.1.5 OK"
#: DATA stored (and committed): the only reply that means "taken".
QUEUED = "250 2.0.0 OK queued as {inbound_id}"
#: RCPT for an address that is not ours: never an open relay.
NOT_OURS = "550 5.1.1 <{address}>: recipient not accepted here"
#: An empty DATA, refused before the store (issue #15): it has no Message-ID,
#: so the dedup would take the first and call every later one a duplicate.
EMPTY = "554 5.6.0 Empty message, nothing stored"
#: Anything went wrong inside: the MTA keeps the mail and retries.
TEMPFAIL = "451 4.3.0 Temporary failure, mail not taken; please try again later"
#: Over serve's connection limit, said before closing.
TOO_MANY = b"421 4.3.2 Too many connections, try again later\r\n"
#: aiosmtpd's answer to a mail over the SIZE limit.
TOO_BIG = 552


def code(reply: str | bytes) -> int:
    """The reply code of one of the replies above ("250 2.1.5 OK" -> 250)."""
    text = reply.decode() if isinstance(reply, bytes) else reply
    return int(text[:3])

Store = Callable[[Incoming], Awaitable[Accepted]]


@dataclass
class ListenerStats:
    """Counters for logs and metrics."""

    sessions: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused_rcpt: int = 0
    refused_size: int = 0  # 552: over the SIZE limit (aiosmtpd answers it itself)
    tempfailed: int = 0
    refused_connections: int = 0
    active: set[Any] = field(default_factory=set)


class MaildeskHandler:
    """aiosmtpd handler hooks. `is_ours` decides RCPT; `store` commits."""

    def __init__(self, is_ours: Callable[[str], bool], store: Store, source: str,
                 stats: ListenerStats) -> None:
        self.is_ours = is_ours
        self.store = store
        self.source = source
        self.stats = stats

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not self.is_ours(address):
            self.stats.refused_rcpt += 1
            log.info("refused recipient %s from %s", address, session.peer)
            return NOT_OURS.format(address=address)
        envelope.rcpt_tos.append(address)
        return RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw.strip():
            log.info("refused an empty mail from %s", envelope.mail_from)
            return self._status(envelope, EMPTY)
        incoming = Incoming(raw, self.source, envelope.mail_from or None,
                            tuple(a.lower() for a in envelope.rcpt_tos))
        try:
            accepted = await self.store(incoming)
        except Exception:
            self.stats.tempfailed += 1
            log.exception("could not store mail from %s (answered 451)", envelope.mail_from)
            return self._status(envelope, TEMPFAIL)
        if accepted.duplicate:
            self.stats.duplicates += 1
        else:
            self.stats.accepted += 1
        log.info("accepted mail from %s for %s as inbound %s%s", envelope.mail_from,
                 ", ".join(envelope.rcpt_tos), accepted.inbound_id,
                 " (duplicate)" if accepted.duplicate else "",
                 extra={"inbound_id": accepted.inbound_id, "source": self.source,
                        "message_id": accepted.message_id,
                        **({"ticket": accepted.ticket_number} if accepted.ticket_number else {})})
        return self._status(envelope, QUEUED.format(inbound_id=accepted.inbound_id))

    def _status(self, envelope: Envelope, status: str) -> str:
        """SMTP: one status. LMTP: one per recipient (RFC 2033); the mail is
        stored once for all of them, so they share the outcome."""
        if self.source != "lmtp":
            return status
        return "\r\n".join(status for _ in envelope.rcpt_tos) or status

    async def handle_exception(self, error: Exception) -> str:
        """Anything unexpected inside a session: temporary, never 500."""
        self.stats.tempfailed += 1
        log.exception("SMTP session error (answered 451)", exc_info=error)
        return TEMPFAIL


class _TrackedSMTP(SMTP):
    line_length_limit = LINE_LIMIT

    def __init__(self, *args: Any, stats: ListenerStats, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stats = stats

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._stats.active.add(self)
        self._stats.sessions += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._stats.active.discard(self)
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        """Every reply passes here: the one place that sees the 552s aiosmtpd
        gives itself (SIZE= too big at MAIL FROM, too much data in DATA)."""
        text = status.decode(errors="replace") if isinstance(status, bytes) else str(status)
        if text.startswith(str(TOO_BIG)):
            self._stats.refused_size += 1
            log.info("refused a mail over the size limit (%s)", text)
        await super().push(status)


class _TrackedLMTP(_TrackedSMTP, LMTP):
    pass


class _Refuser(asyncio.Protocol):
    """Beyond the connection limit: a 421 greeting, then goodbye."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(TOO_MANY)
        transport.close()


@dataclass
class ListenerConfig:
    source: str  # "smtp" or "lmtp"
    hostname: str
    max_bytes: int
    max_connections: int
    timeout: int
    tls_context: ssl.SSLContext | None = None


def protocol_factory(config: ListenerConfig, handler: MaildeskHandler,
                     stats: ListenerStats) -> Callable[[], asyncio.Protocol]:
    cls = _TrackedLMTP if config.source == "lmtp" else _TrackedSMTP

    def make() -> asyncio.Protocol:
        if len(stats.active) >= config.max_connections:
            stats.refused_connections += 1
            log.warning("%s connection limit %d reached: answered 421", config.source,
                        config.max_connections)
            return _Refuser()
        return cls(
            handler, stats=stats, hostname=config.hostname, data_size_limit=config.max_bytes,
            enable_SMTPUTF8=True, decode_data=False, timeout=config.timeout,
            tls_context=config.tls_context, require_starttls=False,
            ident="maildesk",
        )

    return make


async def listen_unix(factory: Callable[[], asyncio.Protocol], path: str, mode: str,
                      group: str) -> asyncio.AbstractServer:
    """The LMTP listener on a unix socket: a stale socket file of an earlier
    run is replaced, the new one gets lmtp.socket_mode and socket_group."""
    with suppress(FileNotFoundError):
        os.unlink(path)
    server = await asyncio.get_running_loop().create_unix_server(factory, path)
    try:
        share_socket(path, mode, group)
    except BaseException:
        server.close()
        raise
    return server


def share_socket(path: str, mode: str, group: str) -> None:
    """Give the LMTP socket the configured mode and group: Postfix's lmtp
    client connects as `postfix`, and a socket created with maildesk's
    umask (0027 in the unit) would refuse it with "permission denied"."""
    if group:
        import grp

        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"lmtp.socket_group: no group {group!r} on this machine") from None
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            raise ConfigError(f"lmtp.socket_group: cannot give {path} to group {group!r} "
                              f"(maildesk must be a member of it)") from None
    os.chmod(path, int(mode, 8))


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    if not (cert and key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def close_sessions(stats: ListenerStats, grace: float) -> int:
    """Wait up to `grace` seconds for sessions in flight, then cut the rest.
    Returns how many had to be cut."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while stats.active and loop.time() < deadline:
        await asyncio.sleep(0.05)
    cut = 0
    for protocol in list(stats.active):
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.close()
            cut += 1
    return cut
