"""Engine, sessions and the schema version check.

SQLite runs in WAL mode with synchronous=FULL: a commit is on disk when it
returns, which is what "accepted" means for maildesk. PostgreSQL is used by
URL as it is.

The SQLite file holds every raw mail, so it is private: the first connection
creates its directory 0700 (the data dir, by default) and the file 0600, and
SQLite gives its -wal and -shm files the file's mode. An existing directory
or file keeps the mode it has, so an admin who wants a group to read (for
backups, say) chmods it once; systemd's StateDirectoryMode= does the same for
the data dir. Nothing is created before a connection is made, and commands
that need the schema check for the file first (:func:`require_schema`), so a
mistyped data dir gets a clear error instead of an empty database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from maildesk.errors import PermanentError, TemporaryError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration. Kept here so that every command can check the
#: schema without loading Alembic (a pipe transport starts a process per
#: mail); a test checks it against Alembic's own head.
SCHEMA_REVISION = "0015"
#: Modes of what maildesk creates for its SQLite database (see the module doc).
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class StoreUnavailable(TemporaryError):
    """The database cannot be reached now; the caller should try later."""


class SchemaError(PermanentError):
    """The schema is missing or older than this maildesk."""


def make_engine(url: str, echo: bool = False) -> Engine:
    """An engine with maildesk's connection settings for the URL's dialect."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
        )
        path = sqlite_path(url)
        if path is not None:
            event.listen(engine, "do_connect", lambda *_: _create_private_file(path))
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, echo=echo, pool_pre_ping=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database, an in-memory
    one or a ``file:`` URI (SQLite opens those itself)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_private_dir(path: Path) -> None:
    """``mkdir -p`` where each directory it creates is 0700 (the umask can
    only take bits away); an existing directory keeps its mode."""
    missing = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass  # another process was first


def _create_private_file(path: Path) -> None:
    """Before SQLite opens the file: create it 0600 (SQLite would use 0644
    minus the umask), in a private directory. An existing file is left as is."""
    if path.exists():
        return
    make_private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def begin_not_durable(engine: Engine, connection: Connection | None = None
                      ) -> Iterator[Connection]:
    """A transaction whose commit may return before it is on disk: after a
    power failure (not a crash of the process) it may be gone.

    Only for a change whose loss is harmless and that a durable commit
    follows: both SQLite's WAL and PostgreSQL's WAL are written in order, so
    the next durable commit, on any connection, makes this one durable too.
    The worker's claim (queued -> sending) is such a change: lost, the row
    is queued again and sent by the sweep, just as a row left "sending" is
    (the at-least-once window); the durable commit that marks it sent
    carries the claim with it. SQLite: synchronous=NORMAL for this one
    transaction, FULL again afterwards (a connection where that fails is
    discarded); PostgreSQL: SET LOCAL synchronous_commit = off. On
    ``connection`` when given (it must have no transaction open), else on a
    connection of its own.
    """
    if connection is None:
        with engine.connect() as own, begin_not_durable(engine, own) as same:
            yield same
        return
    if engine.dialect.name != "sqlite":
        with connection.begin():
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield connection
        return
    raw = connection.connection.driver_connection
    raw.execute("PRAGMA synchronous=NORMAL")
    try:
        with connection.begin():
            yield connection
    finally:
        try:
            raw.execute("PRAGMA synchronous=FULL")
        except BaseException:
            connection.invalidate()
            raise


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception.

    Only the service and the CLI's write commands open one; store helpers
    take a session and never commit, so two writes can share a transaction.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    """Alembic's config built in code: the migrations ship inside the package,
    so no alembic.ini has to be found at run time."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """Alembic's head, read from the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The revision in alembic_version, None for an empty database."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or migrate the schema to the newest revision."""
    from alembic import command

    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine) or ""


def require_schema(engine: Engine, url: str) -> None:
    """Stop with a clear message when `maildesk db upgrade` is needed.

    A SQLite file that does not exist is not created (connecting would):
    the message names it, and the data dir and config it came from are what
    to look at when `db upgrade` was already run."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise SchemaError(
            f"no maildesk database at {path.absolute()}: run `maildesk db upgrade` to create "
            "it (with the same config and MAILDESK_DATA_DIR as this command)"
        )
    current = current_revision(engine)
    head = SCHEMA_REVISION
    if current is None:
        raise SchemaError(
            f"the database at {safe_url(url)} has no maildesk schema yet: "
            "run `maildesk db upgrade` first"
        )
    if current != head:
        raise SchemaError(
            f"the database schema is at revision {current}, this maildesk needs {head}: "
            "run `maildesk db upgrade`"
        )


def safe_url(url: str) -> str:
    """The URL without a password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        rest = f"{user}:***@{host}"
    return f"{scheme}{sep}{rest}"
