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

FILE_NAME = "secret"


def load_secret(settings: Settings) -> bytes:
    if settings.security.secret:
        return settings.security.secret.encode()
    path = settings.data_dir / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
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
