"""The data dir and the SQLite database hold every raw mail (issue 17):
maildesk creates the directory 0700 and the database (and SQLite its WAL
and shared-memory files) 0600 whatever the umask; modes an admin set on an
existing directory or file stay. A command that needs the schema, run
against a data dir without one, creates no empty database and says which
file is missing and which command creates it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from maildesk import db
from tests.mailfactory import make_mail

REPO = Path(__file__).resolve().parents[2]
MAIL = (b"From: Juergen <juergen@example.de>\r\nTo: support@example.com\r\n"
        b"Subject: Drucker\r\nMessage-ID: <modes-1@example.de>\r\n\r\nHallo\r\n")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask, under which files would be world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def run(data: Path, *args: str, stdin: bytes = b"",
        **settings: str) -> subprocess.CompletedProcess[bytes]:
    """The real command, as an MTA's pipe or an admin runs it (umask 022);
    `settings` are further MAILDESK_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILDESK_")}
    env |= {"MAILDESK_CONFIG": str(REPO / "maildesk.toml"), "MAILDESK_DATA_DIR": str(data),
            **settings}
    return subprocess.run([sys.executable, "-m", "maildesk", *args], input=stdin, env=env,
                          cwd=REPO, capture_output=True, timeout=60,
                          preexec_fn=lambda: os.umask(0o022))


def test_db_upgrade_creates_a_private_data_dir_and_database(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "var"  # two levels missing
    done = run(data, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700
    assert mode(data.parent) == 0o700
    assert mode(data / "maildesk.sqlite3") == 0o600

    done = run(data, "ingest", stdin=MAIL)
    assert done.returncode == 0, done.stderr
    assert mode(data / "maildesk.sqlite3") == 0o600


def test_the_wal_and_shm_files_are_private_too(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "var" / "maildesk.sqlite3"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:  # kept open: SQLite keeps -wal and -shm meanwhile
            connection.execute(text("CREATE TABLE t (x TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('raw mail')"))
            files = {p.name: mode(p) for p in path.parent.iterdir()}
    finally:
        engine.dispose()
    assert files == {"maildesk.sqlite3": 0o600, "maildesk.sqlite3-wal": 0o600,
                     "maildesk.sqlite3-shm": 0o600}
    assert mode(path.parent) == 0o700


def test_modes_an_admin_set_are_kept(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    data.chmod(0o750)  # e.g. systemd's StateDirectoryMode=0750 for a backup group
    assert run(data, "db", "upgrade").returncode == 0
    database = data / "maildesk.sqlite3"
    database.chmod(0o640)
    done = run(data, "ingest", stdin=MAIL)
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o750
    assert mode(database) == 0o640


def test_ingest_without_a_schema_creates_no_database_and_says_what_to_run(
        tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    done = run(data, "ingest", stdin=MAIL)

    assert done.returncode == 75  # EX_TEMPFAIL: the MTA keeps the mail and retries
    error = done.stderr.decode()
    assert f"no maildesk database at {data / 'maildesk.sqlite3'}" in error
    assert "run `maildesk db upgrade`" in error
    assert "mail not taken" in error
    assert list(data.iterdir()) == []  # no empty SQLite file (nor -wal, -shm) left behind

    # and once the schema is made, the same mail is taken
    assert run(data, "db", "upgrade").returncode == 0
    done = run(data, "ingest", stdin=MAIL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"maildesk: created #")


def test_a_command_against_a_mistyped_data_dir_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "vra"  # the real one is var
    done = run(data, "tickets", "list")
    assert done.returncode != 0
    assert f"no maildesk database at {data / 'maildesk.sqlite3'}" in done.stderr.decode()
    assert not data.exists()


# -- PostgreSQL: the database is elsewhere, the data dir still holds mail ------

def _tree_modes(root: Path) -> dict[str, int]:
    """Every directory and file under `root` (and itself) with its mode."""
    return {str(p.relative_to(root.parent)): mode(p) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_the_generated_secret_makes_a_private_data_dir(
        tmp_path: Path, database_url: str) -> None:
    """With PostgreSQL no SQLite connection creates the data dir first: the
    first thing in it may be the generated secret (a single instance)."""
    data = tmp_path / "srv" / "var"
    url = {"MAILDESK_DATABASE__URL": database_url, "MAILDESK_SECURITY__ALLOW_LOCAL_SECRET": "true"}
    assert run(data, "db", "upgrade", **url).returncode == 0
    done = run(data, "ingest", stdin=make_mail(subject="Drucker"), **url)
    assert done.returncode == 0, done.stderr
    assert _tree_modes(data) == {"var": 0o700, "var/secret": 0o600}
    assert mode(data.parent) == 0o700


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_stored_attachment_makes_private_dirs(
        tmp_path: Path, database_url: str) -> None:
    """security.secret set (as several instances need): the attachment store
    is what creates the data dir, and every level of it is private."""
    data = tmp_path / "var"
    pdf = b"%PDF-1.4 the customer's contract"
    url = {"MAILDESK_DATABASE__URL": database_url,
           "MAILDESK_SECURITY__SECRET": "test-secret-shared-by-all-instances"}
    assert run(data, "db", "upgrade", **url).returncode == 0
    done = run(data, "ingest", stdin=make_mail(
        subject="Vertrag", attachments=[("vertrag.pdf", "application/pdf", pdf)]), **url)
    assert done.returncode == 0, done.stderr

    modes = _tree_modes(data)
    files = [name for name in modes if (tmp_path / name).is_file()]
    assert len(files) == 1 and (tmp_path / files[0]).read_bytes() == pdf
    assert {name: m for name, m in modes.items() if name not in files} == {
        "var": 0o700, "var/attachments": 0o700, str(Path(files[0]).parent.parent): 0o700,
        str(Path(files[0]).parent): 0o700}
    assert modes[files[0]] == 0o600
