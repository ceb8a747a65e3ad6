"""Rules of the design that a reader relies on, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from maildesk import db

PACKAGE = Path(__file__).resolve().parent.parent / "maildesk"
PURE = ["pipeline", "parse.py", "filenames.py", "htmlsafe.py", "config.py", "render.py",
        "links.py", "csat.py", "language.py",
        "compose.py", "notices.py", "lifecycle.py", "tokens.py", "quoting.py", "calendar.py",
        "rules.py"]
FORBIDDEN = ("sqlalchemy", "sqlmodel", "alembic", "maildesk.db", "maildesk.store",
             "maildesk.models", "maildesk.service", "socket", "smtplib", "dramatiq", "redis")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _pure_files() -> list[Path]:
    files = []
    for entry in PURE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_decision_modules_import_no_database_or_network(path: Path) -> None:
    bad = {n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_only_parse_imports_mail_parser() -> None:
    users = [p.name for p in PACKAGE.rglob("*.py")
             if any(n.startswith("mailparser") for n in _imports(p))]
    assert users == ["parse.py"]


def test_migrations_match_the_models(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], "models changed without a migration: " + repr(diff[:5])
    engine.dispose()


def test_schema_revision_constant_is_alembics_head() -> None:
    assert db.SCHEMA_REVISION == db.head_revision()
