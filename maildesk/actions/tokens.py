"""API tokens: created for an agent of the config, shown once, kept as a hash.

A token is `mdk_` + 43 URL-safe characters (256 random bits). Only its
SHA-256 is stored: a stolen database gives no usable token, and with this
much randomness a fast hash is as good as a slow one (GitHub and GitLab do
the same). `authenticate` is what the HTTP API asks on every request; it
answers in constant time for a wrong token of the right shape, and never
for a revoked token or one whose agent has left the config.

Each entry point opens its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.errors import PermanentError
from maildesk.models import ApiToken, utcnow

PREFIX = "mdk_"
SCOPES = ("agent", "admin")
#: How much of a token a listing shows (never enough to use it).
SHOWN = len(PREFIX) + 6


class TokenError(PermanentError):
    """A token cannot be created or revoked as asked (the message says why)."""


@dataclass(frozen=True)
class Caller:
    """Who an API request speaks for."""

    token_id: int
    agent_email: str
    scope: str

    @property
    def admin(self) -> bool:
        return self.scope == "admin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: str) -> bool:
    """The right shape (checked before any query: junk costs nothing)."""
    return (token.startswith(PREFIX) and len(token) == len(PREFIX) + 43
            and all(c.isalnum() or c in "-_" for c in token[len(PREFIX):]))


def create_token(engine: Engine, settings: Settings, agent_email: str, name: str = "",
                 scope: str = "agent") -> tuple[str, dict[str, Any]]:
    """(the token, its row as listed). The token is not stored: show it now."""
    email = agent_email.strip().lower()
    if email not in {a.email.lower() for a in settings.agents}:
        raise TokenError(f"{agent_email} is no agent of the config ([[agents]])")
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    values = {"token_hash": digest(token), "prefix": token[:SHOWN], "agent_email": email,
              "name": name.strip()[:200], "scope": scope, "created_at": utcnow()}
    table = ApiToken.__table__
    with engine.begin() as connection:
        token_id = connection.execute(
            table.insert().values(**values).returning(table.c.id)).scalar_one()
    return token, _as_dict({**values, "id": token_id, "last_used_at": None,
                            "revoked_at": None})


def list_tokens(engine: Engine, include_revoked: bool = False) -> list[dict[str, Any]]:
    table = ApiToken.__table__
    statement = select(table).order_by(table.c.id)
    if not include_revoked:
        statement = statement.where(table.c.revoked_at.is_(None))
    with engine.connect() as connection:
        return [_as_dict(dict(row._mapping)) for row in connection.execute(statement)]


def revoke_token(engine: Engine, token_id: int) -> bool:
    """True when the token was active and is revoked now."""
    table = ApiToken.__table__
    with engine.begin() as connection:
        return bool(connection.execute(
            update(table).where(table.c.id == token_id, table.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())).rowcount)


def authenticate(engine: Engine, settings: Settings, token: str) -> Caller | None:
    """The caller of an active token of a current agent; None otherwise."""
    if not looks_like_token(token):
        return None
    wanted = digest(token)
    table = ApiToken.__table__
    with engine.connect() as connection:  # a read; the rare write below commits itself
        row = connection.execute(
            select(table.c.id, table.c.token_hash, table.c.agent_email, table.c.scope,
                   table.c.last_used_at)
            .where(table.c.token_hash == wanted, table.c.revoked_at.is_(None))).first()
        connection.rollback()
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            return None
        if row.agent_email not in {a.email.lower() for a in settings.agents}:
            return None  # the agent left the config: their tokens stop working
        now = utcnow()
        if _stale(row.last_used_at, now):  # at most one write a minute per token
            with connection.begin():
                connection.execute(update(table).where(table.c.id == row.id)
                                   .values(last_used_at=now))
    return Caller(row.id, row.agent_email, row.scope)


def _stale(moment: datetime | None, now: datetime) -> bool:
    if moment is None:
        return True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return (now - moment).total_seconds() > 60


def _as_dict(row: dict[str, Any]) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {"id": row["id"], "prefix": row["prefix"], "agent": row["agent_email"],
            "name": row["name"], "scope": row["scope"], "created_at": iso(row["created_at"]),
            "last_used_at": iso(row["last_used_at"]), "revoked_at": iso(row["revoked_at"])}
