"""What every `maildesk` command shares: the App (settings and engine, built
once), exit codes, error handling and JSON output.

Exit codes follow sysexits where an MTA reads them: 0 taken, 65 not a mail,
75 try again later, 78 configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from maildesk import db
from maildesk.config import ConfigError, Settings, load_settings
from maildesk.logsetup import setup_logging

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """Settings and engine, made on first use so `--help` needs neither."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            setup_logging(self._settings.log)
        return self._settings

    @property
    def config_source(self) -> str:
        """What error messages name as the config's origin."""
        return str(self.config_path or "built-in defaults")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.settings.database_url, self.settings.database.echo)
            # what this command commits wakes a running serve (PostgreSQL
            # NOTIFY in the same transaction; serve itself silences it)
            from maildesk.process.wakeup import announce

            announce(self._engine)
        return self._engine

    def require_shared_secret(self) -> None:
        """serve and worker: refuse a generated secret on PostgreSQL."""
        from maildesk.secret import shared_secret_problem

        problem = shared_secret_problem(self.settings, self.config_source)
        if problem:
            fail(problem, EX_CONFIG)

    def hand_over(self, outbox_ids: list[int]) -> None:
        """Committed notifications onto the broker (Redis; with the embedded
        one, serve sends them: the commit woke it, process/wakeup.py)."""
        from maildesk.deliver.broker import hand_over

        hand_over(self.settings, outbox_ids)

    def ready_engine(self) -> Engine:
        """The engine, after checking the schema is there and current."""
        db.require_schema(self.engine, self.settings.database_url)
        return self.engine


def fail(message: str, code: int) -> None:
    click.echo(f"maildesk: {message}", err=True)
    sys.exit(code)


def handles_errors(func: F) -> F:
    """Turn the errors a person can act on into one clear line and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EX_CONFIG)
        except db.SchemaError as exc:
            fail(str(exc), EX_CONFIG)
        except (db.StoreUnavailable, OperationalError) as exc:
            fail(f"database unavailable, try again later: {getattr(exc, 'orig', exc)}",
                 EX_TEMPFAIL)
        except SQLAlchemyError as exc:
            fail(f"database error: {exc}", EX_SOFTWARE)

    return wrapper  # type: ignore[return-value]


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


pass_app = click.make_pass_decorator(App)
