"""Content-addressed files under the data dir (attachments).

A file is named by its sha256, so the same attachment sent a hundred times
is stored once, and a name can never be chosen by a sender. Files are
written to a temporary name, fsync'ed and renamed, so a reader never sees a
half-written file and the bytes are on disk before the row that names them
commits.

Attachments are mail: their directories are created 0700 and the files
0600 (db.make_private_dir), whichever the database; on PostgreSQL nothing
else may have created the data dir before.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from maildesk.db import PRIVATE_FILE_MODE, make_private_dir


def blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / sha256


def put_blob(root: Path, data: bytes) -> str:
    """Store `data` once; returns its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(root, digest)
    if path.exists():
        return digest
    _make_dirs_durably(path.parent)
    tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return digest


def read_blob(root: Path, sha256: str) -> bytes:
    return blob_path(root, sha256).read_bytes()


def _make_dirs_durably(directory: Path) -> None:
    """mkdir -p, then fsync the parent of each new directory so that the
    directory entries survive a crash too."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    make_private_dir(directory)  # attachments are mail: 0700 whichever the database
    for created in reversed(missing):
        _fsync_dir(created.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
