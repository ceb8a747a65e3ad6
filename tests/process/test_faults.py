"""faults.py: which failures leave a mail pending (the machine's fault) and
which park it as failed (the mail's). Constructed exceptions, no database."""

from __future__ import annotations

import errno
import sqlite3

import psycopg.errors as pg
import pytest
from sqlalchemy import exc as sa_exc

from maildesk import faults


def _wrapped(orig: BaseException, kind: type[sa_exc.DBAPIError] = sa_exc.OperationalError,
             invalidated: bool = False) -> sa_exc.DBAPIError:
    return kind("INSERT …", {}, orig, connection_invalidated=invalidated)  # type: ignore[arg-type]


def _sqlite(code: int, text: str = "x") -> sqlite3.Error:
    error = sqlite3.OperationalError(text)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize("error", [
    _wrapped(pg.DeadlockDetected("deadlock detected")),
    _wrapped(pg.SerializationFailure("could not serialize access")),
    _wrapped(pg.LockNotAvailable("could not obtain lock")),
    _wrapped(pg.QueryCanceled("canceling statement due to statement timeout")),
    _wrapped(pg.AdminShutdown("terminating connection due to administrator command")),
    _wrapped(pg.CannotConnectNow("the database system is starting up")),
    _wrapped(pg.DiskFull("could not extend file")),
    _wrapped(pg.TooManyConnections("sorry, too many clients already")),
    _wrapped(pg.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")),
    _wrapped(pg.OperationalError("server closed the connection unexpectedly")),
    _wrapped(pg.InterfaceError("the connection is closed"), sa_exc.InterfaceError),
    _wrapped(ValueError("anything"), invalidated=True),
    _wrapped(_sqlite(5, "database is locked")),
    _wrapped(_sqlite(13, "database or disk is full")),
    _wrapped(_sqlite(10 | (3 << 8), "disk I/O error")),  # an extended IOERR code
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
], ids=lambda e: type(getattr(e, "orig", e)).__name__)
def test_the_machines_faults_are_temporary(error: BaseException) -> None:
    assert faults.is_temporary(error)


@pytest.mark.parametrize("error", [
    RuntimeError("a bug in the pipeline"),
    KeyError("subject"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    _wrapped(pg.UniqueViolation("duplicate key value"), sa_exc.IntegrityError),
    _wrapped(pg.StringDataRightTruncation("value too long"), sa_exc.DataError),
    _wrapped(pg.UndefinedColumn("column does not exist"), sa_exc.ProgrammingError),
    _wrapped(_sqlite(1, "no such column: x")),
    _wrapped(_sqlite(19, "UNIQUE constraint failed")),
    OSError(errno.EACCES, "Permission denied"),
    _wrapped(pg.OperationalError("invalid input syntax")),  # no SQLSTATE, not a connection
], ids=lambda e: type(getattr(e, "orig", e)).__name__)
def test_what_repeats_for_the_same_bytes_is_permanent(error: BaseException) -> None:
    assert not faults.is_temporary(error)


def test_the_cause_chain_is_followed() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as low:
            raise RuntimeError("could not store attachment") from low
    except RuntimeError as high:
        assert faults.is_temporary(high)
        assert faults.is_no_space(high)


def test_a_cycle_in_the_chain_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert not faults.is_temporary(first)


def test_no_space_is_told_apart_from_other_temporary_faults() -> None:
    assert faults.is_no_space(_wrapped(pg.DiskFull("could not extend file")))
    assert faults.is_no_space(_wrapped(_sqlite(13, "database or disk is full")))
    assert not faults.is_no_space(_wrapped(pg.DeadlockDetected("deadlock detected")))


@pytest.mark.parametrize(("attempts", "delay"), [
    (0, 0.0), (1, 2.0), (2, 4.0), (3, 8.0), (8, 256.0), (9, 300.0), (500, 300.0),
])
def test_retry_delay_doubles_up_to_the_cap(attempts: int, delay: float) -> None:
    assert faults.retry_delay(attempts, 2, 300) == delay
