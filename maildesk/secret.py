"""The HMAC secret behind our Message-IDs, reply tokens and references.

From the config when set (several instances must share it); otherwise a
random one is created once in the data dir, so the quick start needs no
setup and the secret survives restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from maildesk.config import Settings
from maildesk.db import make_private_dir

FILE_NAME = "secret"


def shared_secret_problem(settings: Settings, config: str) -> str | None:
    """Why this instance must not run with a generated secret, or None.

    On PostgreSQL several instances may share one database; each would
    generate its own secret into its own data dir, and a reply to one
    instance's Message-ID or reply address would not verify at the other:
    it would open a new ticket, or an agent's answer would be held as
    unverified. SQLite has one host and one data dir, so it is fine there.
    """
    if settings.security.secret or settings.security.allow_local_secret:
        return None
    if not settings.database_url.startswith("postgresql"):
        return None
    return (f"security.secret is not set ({config}) and the database is PostgreSQL: "
            f"several instances may share it, and each would generate its own secret "
            f"into its data dir ({settings.data_dir / FILE_NAME}), so replies to one "
            f"instance's mails would not thread at another. Set security.secret (or "
            f"MAILDESK_SECURITY__SECRET) to the same random value on every instance, "
            f"e.g. the output of `openssl rand -hex 32`, or security.allow_local_secret "
            f"= true if this is the only instance")


def load_secret(settings: Settings) -> bytes:
    if settings.security.secret:
        return settings.security.secret.encode()
    path = settings.data_dir / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    # private whichever the database (on SQLite the first connection makes
    # it 0700 too; on PostgreSQL this may be the first thing in the data dir)
    make_private_dir(path.parent)
    # Written whole to a private temporary file, then linked into place:
    # link() never replaces, so concurrent first starts agree on one secret
    # and nobody ever reads a half-written file.
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first: use theirs
    finally:
        tmp.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"{path} is empty: delete it to have a new secret made")
    return value.encode()
