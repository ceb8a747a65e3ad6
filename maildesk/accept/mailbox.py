"""`maildesk import`: an mbox file or a Maildir, in batches, with progress.

Each batch goes through the same accept-then-process path as `maildesk
ingest`; re-running an import finds every mail already taken and reports it
as a duplicate, so an interrupted migration is simply started again.
"""

from __future__ import annotations

import logging
import mailbox
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from maildesk.accept.spool import Incoming

log = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    path: str
    kind: str
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind,
            "total": self.total,
            "outcomes": dict(sorted(self.outcomes.items())),
            "errors": self.errors,
        }

    def describe(self) -> str:
        parts = ", ".join(f"{n} {a}" for a, n in sorted(self.outcomes.items())) or "nothing"
        text = f"imported {self.total} messages from {self.kind} {self.path}: {parts}"
        if self.errors:
            text += f"\n{len(self.errors)} could not be read:\n  " + "\n  ".join(self.errors[:20])
        return text


def open_mailbox(path: Path) -> tuple[str, mailbox.Mailbox]:
    """A Maildir (a directory with cur/ and new/) or an mbox file."""
    if path.is_dir():
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            raise ValueError(f"{path} is a directory but not a Maildir (no cur/ or new/)")
        return "maildir", mailbox.Maildir(path, factory=None, create=False)
    return "mbox", mailbox.mbox(path, factory=None, create=False)


def _messages(box: mailbox.Mailbox, summary: ImportSummary) -> Iterator[bytes]:
    for key in box.iterkeys():
        try:
            yield box.get_bytes(key)
        except (OSError, KeyError, ValueError) as exc:
            summary.errors.append(f"{key}: {exc}")


class Taken(Protocol):
    """What this module reads of a processed mail (process/service.Outcome)."""

    action: str


#: Stores and processes a batch of mails (process/service's ingest_batch):
#: handed over by the CLI, so that Accept never imports Process.
IngestBatch = Callable[[list[Incoming]], Sequence[Taken]]


def import_mailbox(ingest_batch: IngestBatch, path: Path, batch_size: int = 100,
                   progress: bool | None = None) -> ImportSummary:
    kind, box = open_mailbox(path)
    summary = ImportSummary(str(path), kind)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(box), unit="mail", desc="import", disable=not show, file=sys.stderr)
    batch: list[Incoming] = []
    try:
        for raw in _messages(box, summary):
            batch.append(Incoming(raw, "import"))
            if len(batch) >= max(1, batch_size):
                _flush(ingest_batch, batch, summary, bar)
        _flush(ingest_batch, batch, summary, bar)
    finally:
        bar.close()
        box.close()
    log.info("import of %s finished: %s", path, summary.as_dict()["outcomes"])
    return summary


def _flush(ingest_batch: IngestBatch, batch: list[Incoming], summary: ImportSummary,
           bar: tqdm) -> None:
    if not batch:
        return
    for outcome in ingest_batch(batch):
        summary.outcomes[outcome.action] += 1
    summary.total += len(batch)
    bar.update(len(batch))
    batch.clear()
