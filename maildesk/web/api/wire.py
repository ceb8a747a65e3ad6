"""Requests in and answers out: the query string and the JSON or
multipart/form-data body validated by a route's pydantic model, and the
answer validated against the model the document promises.

A problem names the field (422), or says what was wrong with the body as a
whole (400 broken JSON, 413 too large, 415 another media type).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from maildesk.actions import uploads
from maildesk.config import Settings
from maildesk.types import ParsedAttachment
from maildesk.web.api.problems import Problem

JSON = "application/json"
FORM = "multipart/form-data"
#: The form field that carries files (repeated, one part per file).
FILES_FIELD = "files"
#: A text field of a form: as long as the longest JSON text, in UTF-8.
FORM_FIELD_BYTES = 400_000
_CHUNK = 64 * 1024
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def parse_query(request: web.Request, model: type[BaseModel]) -> Any:
    """The query string validated by `model`; 422 naming the field.

    A parameter given twice is refused rather than one of its values taken
    silently: `?status=open&status=solved` would otherwise answer for one of
    them while the caller believes it asked for both."""
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise Problem(422, "invalid-parameter", f"{name}: given more than once",
                          field=name)
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise _invalid(exc, "invalid-parameter") from None


async def parse_body(request: web.Request, model: type[BaseModel]) -> Any:
    """The JSON body validated by `model`: 415 for another type, 400 for
    broken JSON, 422 naming the field."""
    if request.content_type != JSON:
        raise Problem(415, "unsupported-media-type", "send the body as application/json")
    try:
        data = await request.json()
    except ValueError:
        raise Problem(400, "invalid-json", "the body is not JSON") from None
    return validate(model, data)


async def parse_message(request: web.Request, model: type[BaseModel],
                        settings: Settings) -> tuple[Any, list[ParsedAttachment]]:
    """A message body with files: JSON (no files), or multipart/form-data
    with the model's fields as text parts and any number of `files` parts.
    Files are read as they stream in and refused (413, naming the file)
    the moment one passes limits.max_attachment_bytes, so an oversized
    upload is never held in memory whole."""
    if request.content_type == JSON:
        return await parse_body(request, model), []
    if request.content_type != FORM:
        raise Problem(415, "unsupported-media-type",
                      "send the body as application/json or multipart/form-data")
    fields: dict[str, str] = {}
    files: list[ParsedAttachment] = []
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise Problem(400, "invalid-form", "nested multipart parts are not taken")
            name = part.name or ""
            if name == FILES_FIELD and part.filename is not None:
                filename = form_filename(part.filename)
                data = await _read_limited(part, settings.limits.max_attachment_bytes,
                                           filename)
                files.append(uploads.uploaded(filename, part.headers.get(
                    "Content-Type"), data))
            elif name in fields:
                raise Problem(422, "invalid-field", f"{name}: given more than once", field=name)
            else:
                raw = await _read_limited(part, FORM_FIELD_BYTES, None, field=name)
                try:
                    fields[name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise Problem(422, "invalid-field", f"{name}: not UTF-8 text",
                                  field=name) from None
    except (ValueError, AssertionError, HttpProcessingError) as exc:  # a broken form
        raise Problem(400, "invalid-form", f"the form cannot be read: {exc}") from None
    message = validate(model, fields)
    try:
        uploads.check(settings, files)
    except uploads.UploadRefused as exc:
        raise Problem(413, "file-refused", str(exc), field=FILES_FIELD,
                      filename=exc.filename) from None
    return message, files


def form_filename(raw: str) -> str:
    """A part's file name as the sender meant it. Browsers and curl send
    UTF-8 as it is; aiohttp's and some other clients percent-encode it
    (`M%C3%BCller.pdf`), and a name full of escapes would otherwise be
    stored and shown to the customer as such. Only a name whose escapes
    decode to valid UTF-8 is decoded, so `100%.txt` stays what it is."""
    if not _ESCAPE.search(raw):
        return raw
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return raw


async def _read_limited(part: BodyPartReader, limit: int, filename: str | None,
                        field: str | None = None) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            if filename is not None:
                raise Problem(413, "file-refused", (
                    f"{filename}: more than limits.max_attachment_bytes ({limit:,} bytes)"),
                    field=FILES_FIELD, filename=filename)
            raise Problem(413, "too-large", f"{field}: more than {limit:,} bytes", field=field)
        chunks.append(chunk)
    return b"".join(chunks)


def validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, "invalid-field") from None


def _invalid(exc: ValidationError, kind: str) -> Problem:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or None
    return Problem(422, kind, f"{field}: {error['msg']}", field=field)


def json_response(model: type[BaseModel], data: Any, status: int = 200) -> web.Response:
    """Validated against the model the document promises, then sent."""
    return web.Response(text=model.model_validate(data).model_dump_json(), status=status,
                        content_type=JSON)
