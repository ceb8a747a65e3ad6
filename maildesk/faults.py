"""Whose fault is it: the machine's (try again) or the mail's (park it)?

A mail that got its 250 must become a ticket. When processing it fails, the
one question that matters is whether the same bytes would fail again:

- temporary: the database deadlocked with another instance, could not
  serialise, timed out on a lock, lost its connection or is restarting; the
  disk or the quota is full. None of this is the mail's fault, so the mail
  stays pending and is tried again after a growing delay.
- permanent: anything else (a bug in parsing or the pipeline, a constraint
  the data breaks). The mail is parked as failed with the error, listed by
  `maildesk inbound list --state failed` and run again after a fix by
  `maildesk replay` (`--all-failed` after a code upgrade).

The decision looks only at the exception chain (SQLSTATE codes, SQLite
result codes, errno), never at the database, so it is unit-tested with
constructed exceptions.
"""

from __future__ import annotations

import errno

from sqlalchemy import exc as sa_exc

from maildesk.errors import TemporaryError

#: errno values of a full disk or quota.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: SQLSTATE classes that are the server's state, not the statement's
#: (08 connection, 53 insufficient resources incl. disk full, 57 operator
#: intervention: shutdown, cancel, statement timeout, 58 system error).
TEMPORARY_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
#: Single SQLSTATEs: serialization failure, deadlock, lock not available,
#: idle-in-transaction timeout, read-only transaction (a failover to a
#: replica that is not yet promoted).
TEMPORARY_SQLSTATES = frozenset({"40001", "40P01", "55P03", "25P03", "25006"})
#: SQLite primary result codes: BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
TEMPORARY_SQLITE_CODES = frozenset({5, 6, 10, 13, 14, 15})
#: How deep the __cause__/__context__ chain is followed.
MAX_CHAIN = 10


def is_temporary(error: BaseException | None) -> bool:
    """True when `error`, or an error it was raised from, is the machine's
    fault and the same work will likely succeed later."""
    return any(_temporary_one(e) for e in _chain(error))


def is_no_space(error: BaseException | None) -> bool:
    """True when the chain holds a full disk or quota (of any layer)."""
    for e in _chain(error):
        if isinstance(e, OSError) and e.errno in NO_SPACE:
            return True
        if _sqlstate(e) == "53100" or _sqlite_code(e) == 13:
            return True
    return False


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 base, 4 base … cap."""
    if attempts <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(attempts - 1, 30)))


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and len(seen) < MAX_CHAIN and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _temporary_one(error: BaseException) -> bool:
    if isinstance(error, TemporaryError):
        return True
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True  # the pool had no connection for us, or lost one
    state = _sqlstate(error)
    if state:
        return state in TEMPORARY_SQLSTATES or state[:2] in TEMPORARY_SQLSTATE_CLASSES
    code = _sqlite_code(error)
    if code is not None:
        return code & 0xFF in TEMPORARY_SQLITE_CODES
    return _connection_closed(error)


def _sqlstate(error: BaseException) -> str:
    """psycopg's SQLSTATE of the error (or of the DBAPI error it wraps)."""
    for candidate in (error, getattr(error, "orig", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and state:
            return state.upper()
    return ""


def _sqlite_code(error: BaseException) -> int | None:
    for candidate in (error, getattr(error, "orig", None)):
        code = getattr(candidate, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code
    return None


def _connection_closed(error: BaseException) -> bool:
    """psycopg raises OperationalError/InterfaceError without a SQLSTATE when
    the server went away mid-statement ("server closed the connection",
    "the connection is closed", "consuming input failed")."""
    orig = getattr(error, "orig", error)
    name = type(orig).__name__
    if name not in ("OperationalError", "InterfaceError"):
        return False
    text = str(orig).lower()
    return any(words in text for words in (
        "connection", "server closed", "terminat", "consuming input", "could not receive",
        "could not send", "ssl syscall",
    ))
