"""Make attachment names from mail safe to store, download and display.

Attachment names are chosen by whoever sent the mail. Used unchecked they
can climb out of a directory (``../../etc/passwd``), hide a file (``.htaccess``),
disguise an extension with bidi overrides (``invoice\u202egnp.exe``), break
Windows clients (``CON``, ``a:b``) or a ``Content-Disposition`` header
(control characters), or overflow file-system limits (255 bytes). This module
has one pure function that turns any such name into something harmless while
keeping as much as a human would recognise: umlauts and other letters stay,
and the extension survives truncation so the file still opens with the right
program.
"""

from __future__ import annotations

import re
import unicodedata

from maildesk.mail.text import encodable

__all__ = ["MAX_FILENAME_BYTES", "sanitise_filename"]

#: Upper bound for the UTF-8 encoded result. Leaves headroom below the common
#: 255-byte file-system limit for a de-duplication suffix such as " (2)".
MAX_FILENAME_BYTES = 200

# An extension longer than this is more likely part of the name than a real
# file type, so it is not protected from truncation.
_MAX_EXTENSION_BYTES = 20

_PATH_SEPARATORS = re.compile(r"[/\\]")
_WINDOWS_RESERVED_CHARS = re.compile(r'[<>:"|?*]')
_WHITESPACE = re.compile(r"\s+")
_WHITESPACE_CONTROLS = str.maketrans("\t\n\v\f\r", "     ")
_WINDOWS_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
    | {f"COM{c}" for c in "\u00b9\u00b2\u00b3"}
    | {f"LPT{c}" for c in "\u00b9\u00b2\u00b3"}
)
# Unicode categories removed outright: control characters (C0, DEL, C1),
# format characters (bidi overrides such as U+202E that can make "exe.pdf"
# look like "fdp.exe", zero-width characters, BOM) and lone surrogates,
# which cannot even be encoded as UTF-8.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def sanitise_filename(name: str | None, fallback: str = "attachment") -> str:
    """Return a version of ``name`` that is safe as a file name anywhere.

    The result has no directory part, no control or bidi-format characters,
    no leading dot, no Windows-reserved character or device name, is NFC
    normalised (so that "ü" typed on a Mac and on Windows compare equal),
    has collapsed whitespace and is at most :data:`MAX_FILENAME_BYTES` bytes
    in UTF-8 with its extension kept. It is never empty: when nothing usable
    remains, the (equally sanitised) ``fallback`` is returned.
    """
    cleaned = _sanitise(name) if name is not None else ""
    if cleaned:
        return cleaned
    return _sanitise(fallback) or "attachment"


def _sanitise(name: str) -> str:
    """Do the work of :func:`sanitise_filename`; "" when nothing is left."""
    if not isinstance(name, str):
        name = str(name)
    text = unicodedata.normalize("NFC", encodable(name, ""))
    # Tab, newline and friends become spaces before the other control
    # characters are dropped, so "a\tb" stays two words.
    text = text.translate(_WHITESPACE_CONTROLS)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    # The basename after the last separator of either flavour: a Windows
    # client sends "C:\\Users\\x\\file.pdf", an attacker "../../etc/passwd".
    text = _PATH_SEPARATORS.split(text)[-1]
    text = _WINDOWS_RESERVED_CHARS.sub("_", text)
    text = _WHITESPACE.sub(" ", text)
    # No hidden files and no "." / "..": strip leading dots (and the spaces
    # that may hide them); Windows silently drops trailing dots and spaces.
    text = text.lstrip(". ").rstrip(". ")
    if not text:
        return ""
    stem = text.split(".", 1)[0].rstrip(" ").upper()
    if stem in _WINDOWS_DEVICE_NAMES:
        text = "_" + text
    return _truncate(text, MAX_FILENAME_BYTES)


def _truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` UTF-8 bytes, keeping a short extension.

    The cut never splits a code point; the stem loses trailing spaces and
    dots that the cut may have exposed.
    """
    if len(text.encode("utf-8")) <= limit:
        return text
    stem, dot, ext = text.rpartition(".")
    suffix = f".{ext}" if dot and stem else ""
    if len(suffix.encode("utf-8")) > _MAX_EXTENSION_BYTES or " " in suffix:
        stem, suffix = text, ""
    budget = limit - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(". ")
    if not cut:
        # Only the extension would survive; keep it without its dot rather
        # than producing a hidden file.
        return suffix.lstrip(".")
    return cut + suffix
