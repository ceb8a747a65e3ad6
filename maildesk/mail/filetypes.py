"""What a stored file is, judged by its own bytes, and how it may be served.

A file's name and declared Content-Type come from whoever sent it. Served
as declared, a page named "invoice.png" that is really HTML would run in
our origin, and an SVG image can carry script. So the bytes decide where
they disagree with the declaration (puremagic's signature table, pure
Python), only raster images that really are images are shown inline, and
everything else is a download. The web layer adds `nosniff` and a sandbox
policy on top (web/files.py).

Pure: bytes and strings in, a decision out.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from urllib.parse import quote

import puremagic

#: Shown inline in a browser: formats that cannot carry script.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
#: Enough of a file for every signature puremagic knows at the start.
HEAD_BYTES = 8192
GENERIC = "application/octet-stream"
#: Declarations that say nothing about the bytes.
_UNSPECIFIC = frozenset({"", GENERIC, "application/unknown", "binary/octet-stream"})
#: Declared types that the bytes need not confirm: text has no signature.
_TEXT_LIKE = frozenset({"text/plain", "text/csv", "text/calendar", "text/vcard",
                        "text/x-log", "application/json"})


@dataclass(frozen=True)
class Serving:
    """How one stored file goes out over HTTP."""

    content_type: str
    inline: bool


def candidates(data: bytes) -> list[str]:
    """The MIME types the bytes' signatures match, best first (may be empty)."""
    head = data[:HEAD_BYTES]
    if not head:
        return []
    try:
        matches = puremagic.magic_string(head)
    except Exception:  # noqa: BLE001 — an unknown or odd file is simply unknown
        return []
    seen: list[str] = []
    for match in matches:
        mime = (match.mime_type or "").lower()
        if mime and mime not in seen:
            seen.append(mime)
    return seen


def content_type(declared: str | None, filename: str, data: bytes) -> str:
    """The type to record and serve: the declared one where the bytes agree
    (or cannot tell, for plain text), else what the bytes are."""
    declared = (declared or "").split(";", 1)[0].strip().lower()
    found = candidates(data)
    if declared in _UNSPECIFIC:
        guessed = (mimetypes.guess_type(filename)[0] or "").lower()
        if found:
            return guessed if guessed in found else found[0]
        return guessed if guessed in _TEXT_LIKE else GENERIC
    if declared in found:
        return declared
    if found:
        return found[0]
    if declared in _TEXT_LIKE:
        return declared
    # Declared as something with a signature (an image, a PDF) or as
    # something a browser would render (HTML, SVG, script), and the bytes do
    # not show it: claim nothing.
    return GENERIC


def serving(declared: str | None, filename: str, data: bytes) -> Serving:
    """Content type and disposition for a download of the file."""
    kind = content_type(declared, filename, data)
    return Serving(kind, inline=kind in INLINE_IMAGES and kind in candidates(data))


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266: an ASCII fallback name and the UTF-8 name (RFC 8187)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    fallback = fallback.strip() or "attachment"
    value = f'{"inline" if inline else "attachment"}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
