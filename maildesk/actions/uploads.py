"""Files an agent sends with a reply or note (CLI --attach, the API's
multipart upload, an agent's mail): named safely, typed by their bytes,
and refused before anything is written when a limit says no.

The refusal names the file and the limit, so the agent knows which file to
shrink; nothing of the reply is stored when one file is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from maildesk.config import Settings
from maildesk.errors import PermanentError
from maildesk.mail import filetypes
from maildesk.mail.filenames import sanitise_filename
from maildesk.types import ParsedAttachment

#: More files than this in one reply is a mistake (a wrong glob), not a reply.
MAX_FILES = 50


class UploadRefused(PermanentError):
    """A file that may not go out; `filename` names it (the API's field)."""

    def __init__(self, filename: str, message: str) -> None:
        super().__init__(message)
        self.filename = filename


def uploaded(name: str, declared: str | None, data: bytes) -> ParsedAttachment:
    """One uploaded file as the rest of maildesk sees files: a safe name and
    the content type its bytes support (mail/filetypes.py)."""
    safe = sanitise_filename(name)
    return ParsedAttachment(filename=safe, original_filename=name,
                            content_type=filetypes.content_type(declared, safe, data),
                            payload=data)


def check(settings: Settings, files: Sequence[ParsedAttachment]) -> None:
    """UploadRefused for the first file over a limit, or for too many."""
    if len(files) > MAX_FILES:
        raise UploadRefused(files[MAX_FILES].filename,
                            f"{len(files)} files: at most {MAX_FILES} go with one message")
    limit = settings.limits.max_attachment_bytes
    total = 0
    for part in files:
        if not part.payload:
            raise UploadRefused(part.filename, f"{part.filename}: the file is empty")
        if part.size > limit:
            raise UploadRefused(part.filename, (
                f"{part.filename}: {_size(part.size)} is more than "
                f"limits.max_attachment_bytes ({_size(limit)})"))
        total += part.size
    ceiling = settings.limits.max_message_bytes
    if total > ceiling:
        raise UploadRefused(files[-1].filename, (
            f"the files together are {_size(total)}, more than "
            f"limits.max_message_bytes ({_size(ceiling)})"))


def _size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count:,} bytes"
    return f"{count / (1024 * 1024):.1f} MiB"
