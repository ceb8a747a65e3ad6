"""Reading a portal form that may carry files (a ticket's message, a new
request), shared by the pages that take one.

multipart/form-data with the CSRF field first: the body is read as it
streams in, and nothing of it (no file) is taken before that field has
proven the form ours. Files are limited as the API's uploads are
(limits.max_attachment_bytes each, limits.max_message_bytes together,
actions/uploads.MAX_FILES), refused the moment one passes a limit, so an
oversized upload is never read whole. A plain urlencoded form (no files)
is taken too: a browser sends one when the file input was left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from maildesk.actions import uploads
from maildesk.config import Settings
from maildesk.types import ParsedAttachment
from maildesk.web import csrf
from maildesk.web.api.wire import form_filename

FILES_FIELD = "files"
#: Any field not named in `limits` (the CSRF token, a choice) is short.
FIELD_BYTES = 1024
#: More parts than this is no form of ours (a checkbox list is short).
MAX_PARTS = uploads.MAX_FILES + 200
_CHUNK = 64 * 1024


@dataclass
class Posted:
    """The fields as sent (a field may come several times: checkboxes), and the files."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[ParsedAttachment] = field(default_factory=list)

    def value(self, name: str) -> str:
        """The field's first value; "" when it was not sent."""
        return next(iter(self.fields.get(name, ())), "")

    def values(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))


class FormRefused(Exception):
    """The form cannot be taken as sent; `reason` for the page, `filename`
    the file it is about, `posted` what was read before (the typed values
    the page shows again)."""

    def __init__(self, reason: str, filename: str = "", status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.filename, self.status = reason, filename, status
        self.posted = Posted()


async def _read(part: BodyPartReader, limit: int, refusal: FormRefused) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise refusal
        chunks.append(chunk)
    return b"".join(chunks)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormRefused("form") from None


async def read_form(request: web.Request, settings: Settings, secret: bytes,
                    limits: Mapping[str, int]) -> Posted | None:
    """The posted form; None when the CSRF field is missing, is not the
    first one or is wrong (or the Origin is foreign): nothing else is read.
    `limits`: the longer text fields and their size in bytes (over it:
    FormRefused "too_long", 413); files come in FILES_FIELD."""
    own = csrf.origins(settings.web.base_url, request)
    if request.content_type == "application/x-www-form-urlencoded":  # no files in it
        data = await request.post()
        fields: dict[str, list[str]] = {}
        for key, value in data.items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        if not csrf.valid(request, next(iter(fields.get(csrf.FIELD, ())), None), secret, own):
            return None
        return Posted({k: v for k, v in fields.items() if k != csrf.FIELD})
    if request.content_type != "multipart/form-data":
        return None  # no form of ours
    posted, proven, total, parts = Posted(), False, 0, 0
    max_file = settings.limits.max_attachment_bytes
    try:
        reader = await request.multipart()
        async for part in reader:
            parts += 1
            if not isinstance(part, BodyPartReader) or parts > MAX_PARTS:
                raise FormRefused("form")
            name = part.name or ""
            if not proven:
                if name != csrf.FIELD or part.filename is not None:
                    return None
                token = await _read(part, FIELD_BYTES, FormRefused("form"))
                if not csrf.valid(request, token.decode("utf-8", "replace"), secret, own):
                    return None
                proven = True
            elif name == FILES_FIELD and part.filename is not None:
                filename = form_filename(part.filename)
                data = await _read(part, max_file, FormRefused("file_too_large", filename, 413))
                if not filename and not data:  # the browser's "no file chosen"
                    continue
                if not data:
                    raise FormRefused("file_empty", filename)
                if len(posted.files) >= uploads.MAX_FILES:
                    raise FormRefused("too_many", filename, 413)
                total += len(data)
                if total > settings.limits.max_message_bytes:
                    raise FormRefused("too_much", filename, 413)
                posted.files.append(uploads.uploaded(filename, part.headers.get(
                    "Content-Type"), data))
            elif name in limits:
                raw = await _read(part, limits[name], FormRefused("too_long", status=413))
                posted.fields.setdefault(name, []).append(_text(raw))
            else:
                raw = await _read(part, FIELD_BYTES, FormRefused("form"))
                posted.fields.setdefault(name, []).append(_text(raw))
    except FormRefused as refused:
        refused.posted = posted
        raise
    except (ValueError, AssertionError, HttpProcessingError):  # a broken form
        refused = FormRefused("form")
        refused.posted = posted
        raise refused from None
    return posted if proven else None


def size_text(count: int, language: str) -> str:
    """A size as the form's limits are told: "10 MB", in German "2,5 MB"."""
    if count < 1024:
        text = f"{count} B"
    elif count < 1024 * 1024:
        text = f"{count / 1024:.0f} KB"
    else:
        text = f"{count / (1024 * 1024):.1f} MB"
    return text.replace(".", ",") if language == "de" else text
