"""The one scrub for text from strangers, in its three strengths.

Every string maildesk takes from a mail (headers, bodies, file names,
envelope addresses) ends up in a database, a template or a Rust/C parser.
Lone surrogates (what `surrogateescape` makes of undecodable bytes) can be
encoded by none of them, NUL is refused by PostgreSQL, and control
characters have no place in a one-line field. Pure.
"""

from __future__ import annotations

import re

_SURROGATES = re.compile("[\ud800-\udfff]")


def encodable(text: str, replacement: str = "?") -> str:
    """`text` with each lone surrogate replaced (or dropped with "")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub(replacement, text)
    return text


def clean(text: str) -> str:
    """Text for a column or a template: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return encodable(text)


def printable(text: str) -> str:
    """A one-line field (Message-ID, envelope): printable characters only."""
    return "".join(c for c in text if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
