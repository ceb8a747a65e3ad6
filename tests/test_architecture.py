"""Rules of the design that a reader relies on, checked on the source.

The package is laid out by stage (Accept, Process, Deliver) over shared
layers; the rules below are what makes that layout true rather than a
naming convention:

1. Pure decision code (`mail/`, `process/pipeline/`, the named files)
   imports no database, network or broker module.
2. A part imports only from its own layer or lower ones (LAYERS): nothing
   runs back from a stage to an earlier one, or from the domain to a stage;
   where a lower part needs something of a higher one it is handed a
   callback or a small Protocol (accept/imap.Taken, actions' dispatch).
3. No import circle between the top-level parts.
4. Transactions open only at entry points (ENTRY_POINTS): accept, process,
   deliver, the people's actions, the sweep, the CLI, the web's read-only
   views and health checks; everything else takes the caller's session.
5. The apply side of Process is a literal table with one function per
   action a Triage can take.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from maildesk import db
from maildesk.store import search

PACKAGE = Path(__file__).resolve().parent.parent / "maildesk"
#: Lowest first. A part of layer n may import parts of layers 0..n only.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "config", "secret", "logsetup", "systemd", "errors", "faults",
               "types", "db", "models", "migrations", "mail", "access"}),
    frozenset({"store"}),
    frozenset({"tickets", "articles"}),
    frozenset({"actions"}),
    frozenset({"schedule"}),
    frozenset({"accept"}),
    frozenset({"process"}),
    frozenset({"deliver"}),
    frozenset({"web", "cli", "views", "daemon", "__main__"}),
)
#: The only files that open a transaction or connection (rule 4).
ENTRY_POINTS = frozenset({
    "db.py", "migrations/env.py",
    "accept/spool.py", "accept/imap.py", "process/service.py", "process/drainer.py",
    "process/wakeup.py",  # serve's LISTEN connection and its looks at the outbox
    "deliver/runner.py", "deliver/sender.py", "deliver/mailcontext.py",
    "deliver/groupcommit.py",
    "actions/agent.py", "actions/customer.py", "actions/held.py", "actions/release.py",
    "actions/tokens.py", "actions/intake.py", "actions/directory.py", "schedule/sweep.py",
    "cli/mail.py", "cli/tickets.py", "cli/customers.py", "cli/files.py", "cli/ops.py",
    "cli/reports.py",
    "web/health.py", "web/metrics.py", "web/files.py", "web/api/tickets.py", "web/api/outbox.py",
    "web/api/reports.py", "web/api/customers.py",
    "actions/announce.py", "actions/participation.py",  # announcements; a CC stops mails
    "actions/thirdparty.py",  # tickets ask/forward
    "web/portal/auth.py",  # the portal's login, sessions and pages
})
TRANSACTION_CALLS = ("session_scope(", ".begin()", ".connect()", "Session(")
#: Pure decision code: whole folders, plus single files elsewhere.
PURE = ["mail", "process/pipeline", "types.py", "config.py", "errors.py", "access.py",
        "deliver/render.py", "deliver/compose.py", "deliver/encode.py",
        "tickets/links.py", "tickets/csat.py", "tickets/notices.py", "tickets/lifecycle.py",
        "tickets/labels.py", "tickets/reports.py", "tickets/categories.py",
        "tickets/participants.py", "schedule/calendar.py", "schedule/rules.py",
        "schedule/sla.py", "schedule/escalation.py", "web/portal/login_rules.py",
        "web/portal/list_query.py", "web/portal/profile_form.py", "web/portal/request_form.py",
        "articles/render.py", "articles/search.py"]
FORBIDDEN = ("sqlalchemy", "sqlmodel", "alembic", "maildesk.db", "maildesk.store",
             "maildesk.models", "maildesk.faults", "maildesk.accept", "maildesk.process.service",
             "maildesk.deliver.sender", "maildesk.deliver.transport", "socket", "smtplib",
             "dramatiq", "redis", "aiohttp", "aiosmtpd", "aioimaplib", "asyncio")


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
    users = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if any(n.startswith("mailparser") for n in _imports(p))]
    assert users == ["mail/parse.py"]


def _part(module: str) -> str | None:
    """maildesk.accept.imap -> "accept"; maildesk.config -> "config"."""
    parts = module.split(".")
    if parts[0] != "maildesk":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _maildesk_imports(path: Path) -> set[str]:
    """Modules of maildesk that a file imports (`from maildesk import x` counts as maildesk.x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("maildesk")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "maildesk"):
            if node.module == "maildesk":
                names |= {f"maildesk.{a.name}" for a in node.names}
            else:
                names.add(node.module)
    return names


def _layer(part: str) -> int:
    for number, parts in enumerate(LAYERS):
        if part in parts:
            return number
    raise AssertionError(f"maildesk/{part} is in no layer: add it to LAYERS")


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts)


def test_every_part_imports_only_its_own_layer_or_lower_ones() -> None:
    wrong = []
    for path in _sources():
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for module in _maildesk_imports(path):
            other = _part(module)
            if other is None or other == "__version__" or other == own:
                continue
            if _layer(other) > _layer(own):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_circle_between_parts() -> None:
    edges: dict[str, set[str]] = {}
    for path in _sources():
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for module in _maildesk_imports(path):
            other = _part(module)
            if other and other not in (own, "__version__"):
                edges.setdefault(own, set()).add(other)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(f"{a} -> {b} -> … -> {a}" for a, targets in edges.items()
                     for b in targets if reaches(b, a, {b}))
    assert not circles, circles


def test_transactions_open_only_at_entry_points() -> None:
    found = {str(p.relative_to(PACKAGE)) for p in _sources()
             if any(call in p.read_text() for call in TRANSACTION_CALLS)}
    outside = found - ENTRY_POINTS
    assert not outside, f"opens a transaction outside an entry point: {sorted(outside)}"
    # and the rule is not vacuous: the stages' entry points do open them
    assert {"accept/spool.py", "process/service.py", "deliver/sender.py"} <= found


def test_the_apply_table_covers_every_action_a_triage_can_take() -> None:
    from maildesk.process.apply import APPLY
    from maildesk.types import ACTIONS

    assert set(APPLY) == set(ACTIONS)
    assert len(set(APPLY.values())) == len(APPLY)  # one function each


def test_the_fake_lookup_implements_the_lookup_protocol() -> None:
    import inspect

    from maildesk.store.lookup import StoreLookup
    from maildesk.types import Lookup
    from tests.fakes import FakeLookup

    wanted = {name: inspect.signature(member) for name, member in vars(Lookup).items()
              if callable(member) and not name.startswith("_")}
    assert wanted
    for implementation in (FakeLookup, StoreLookup):
        for name, signature in wanted.items():
            assert hasattr(implementation, name), (implementation.__name__, name)
            got = inspect.signature(getattr(implementation, name))
            assert list(got.parameters) == list(signature.parameters), (implementation, name)


def test_migrations_match_the_models(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": False,
            # the search index (migration 0011) is SQL of its own, no model's
            "include_name": lambda name, kind, parent: not search.schema_object(name)})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], "models changed without a migration: " + repr(diff[:5])
    engine.dispose()


def test_schema_revision_constant_is_alembics_head() -> None:
    assert db.SCHEMA_REVISION == db.head_revision()
