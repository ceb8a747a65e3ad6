"""Bytes to text for mail from the wild: declared charsets that lie, none at
all, windows-1252 posing as Latin-1, lenient base64. The final scrub of
every decoded string is mail/text.clean. Pure; used by mail/parse.py and
its parts.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from maildesk.mail.text import encodable

#: What is not base64 (stripped before a lenient decode).
_BASE64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")

# --------------------------------------------------------------------------
# Bytes -> text
# --------------------------------------------------------------------------


def _windows_1252_char(byte: int) -> str:
    """windows-1252 as browsers read it: the 5 undefined bytes map to C1."""
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


# A charmap that cannot fail: decoding with it is the last resort, so it must
# turn any byte sequence into text without U+FFFD.
_WINDOWS_1252_TABLE = "".join(_windows_1252_char(i) for i in range(256))

# Labels that are read as windows-1252: real-world "latin-1" text uses the
# 0x80-0x9f range for windows-1252 characters (euro sign, typographic quotes)
# far more often than for C1 control characters, which is why the WHATWG
# encoding standard treats them as one.
_WINDOWS_1252_LABELS = frozenset(
    {
        "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819",
        "ibm819", "iso-ir-100", "windows-1252", "cp1252", "x-cp1252", "iso_8859-1:1987",
    }
)  # fmt: skip
_ASCII_LABELS = frozenset({"", "us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso646-us"})
_UTF8_LABELS = frozenset({"utf-8", "utf8", "utf_8", "unicode-1-1-utf-8", "x-unicode20utf8"})


def _decode_windows_1252(data: bytes) -> str:
    """Decode as windows-1252; never fails and never yields U+FFFD."""
    return codecs.charmap_decode(data, "strict", _WINDOWS_1252_TABLE)[0]


def _guess_decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset: UTF-8 if valid, else windows-1252.

    Valid UTF-8 with non-ASCII bytes is almost never anything else, and
    windows-1252 is the most common legacy charset in (western) mail.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return _decode_windows_1252(data), "windows-1252"


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode ``data`` labelled with charset ``declared``.

    Tries the declared charset, then UTF-8, then windows-1252. Returns the
    text and, when the label was wrong or unknown, a note that says so.
    """
    if not data:
        return "", None
    label = (declared or "").strip().strip("\"'").lower()
    if label in _ASCII_LABELS:
        if data.isascii():
            return data.decode("ascii"), None
        text, used = _guess_decode(data)
        if not label and used == "utf-8":
            return text, None  # unlabelled UTF-8 is the de-facto default
        stated = f"charset {_short(label)}" if label else "no charset"
        return text, f"{stated} but 8-bit bytes, decoded as {used}"
    if label in _WINDOWS_1252_LABELS:
        return _decode_windows_1252(data), None
    if label in _UTF8_LABELS:
        label = "utf-8-sig"
    try:
        text = data.decode(label)
        text.encode("utf-8")  # some codecs (utf-7, unicode_escape) make surrogates
    except LookupError:
        text, used = _guess_decode(data)
        return text, f"charset {_short(declared)} unknown, decoded as {used}"
    except Exception:  # noqa: BLE001 - UnicodeError, but codecs may raise anything
        text, used = _guess_decode(data)
        return text, f"bytes do not match charset {_short(declared)}, decoded as {used}"
    return text, None


def _short(value: object, limit: int = 40) -> str:
    """A repr() of ``value`` short enough for a problem note."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(encodable(text))


def _decode_base64_lenient(data: bytes) -> tuple[bytes, bool]:
    """Decode as much base64 as possible; report whether it was broken.

    Characters outside the alphabet are skipped, decoding stops at the
    first padding, and an incomplete final group is decoded as far as it
    carries whole bytes (a single leftover character carries none).
    """
    compact = data.translate(None, b" \t\r\n")
    try:
        return base64.b64decode(compact, validate=True), False  # fast path: intact
    except (binascii.Error, ValueError):
        pass
    body, _, rest = data.partition(b"=")
    cleaned = _BASE64_ALPHABET.sub(b"", body)
    broken = bool(_BASE64_ALPHABET.sub(b"", rest.replace(b"=", b"")))
    broken = broken or len(cleaned) != len(re.sub(rb"\s", b"", body))
    remainder = len(cleaned) % 4
    if remainder == 1:
        cleaned = cleaned[:-1]
        broken = True
    elif remainder and b"=" not in data:
        broken = True  # missing padding: the data was most likely cut off
    try:
        return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4)), broken
    except (binascii.Error, ValueError):
        return b"", True
