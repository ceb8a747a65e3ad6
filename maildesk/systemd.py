"""sd_notify without a dependency: a datagram to $NOTIFY_SOCKET.

READY=1 once the listeners are up, STOPPING=1 on shutdown, WATCHDOG=1 every
half of $WATCHDOG_USEC when the unit sets WatchdogSec. Outside systemd
(no NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import suppress

log = logging.getLogger(__name__)


def notify(*lines: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
        return True
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", address, exc)
        return False


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd gave us, in seconds."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    with suppress(ValueError):
        return max(int(usec) / 2_000_000, 0.5)
    return None


async def watchdog(stop: asyncio.Event) -> None:
    """Ping while the event loop runs: a hung loop stops the pings and
    systemd restarts the service."""
    interval = watchdog_interval()
    if interval is None:
        return
    while not stop.is_set():
        notify("WATCHDOG=1")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
