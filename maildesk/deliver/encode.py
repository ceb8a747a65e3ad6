"""Writing a notification's bytes by hand: header folding, RFC 2047 where
needed, quoted-printable or base64 bodies, the multipart boundary. The same
bytes the email package would write (tests compare them), at a fraction of
its cost; compose.compose_bytes puts them together. Pure.
"""

from __future__ import annotations

import binascii
import email.policy
import random
import re
import sys
from email.headerregistry import Address
from typing import Any

# SMTP line ends; "7bit" makes the email package encode non-ASCII bodies as
# quoted-printable or base64 instead of sending raw 8-bit data, which not
# every relay accepts.
POLICY = email.policy.SMTP.clone(cte_type="7bit")
_MAX_LINE = 78  # POLICY.max_line_length
#: Headers the email package treats as unstructured text (its header
#: registry has no class for them, or UnstructuredHeader's own).
_UNSTRUCTURED = frozenset(
    ("subject", "in-reply-to", "references", "thread-topic", "thread-index", "auto-submitted",
     "x-auto-response-suppress")
)  # fmt: skip
_ADDRESS_HEADERS = frozenset(("from", "to", "cc", "reply-to"))
# A value written as it is: printable ASCII words with single spaces, no
# encoded-word opener (the email package would decode and re-encode "=?").
_PLAIN_WORDS = re.compile(r"[!-~]+(?: [!-~]+)*\Z")
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_ATOM_PHRASE = re.compile(_ATEXT + "(?: " + _ATEXT + r")*\Z")
_DOT_ATOM = _ATEXT + r"(?:\." + _ATEXT + ")*"
_PLAIN_ADDR_SPEC = re.compile(_DOT_ATOM + "@" + _DOT_ATOM + r"\Z")
_PLAIN_MSG_ID = re.compile("<" + _DOT_ATOM + "@" + _DOT_ATOM + r">\Z")
_STANDARD_BOUNDARY = re.compile(r"={15}\d{19}==\Z")


def fold_header(name: str, value: Any) -> str:
    """One header as the email package folds it for POLICY."""
    key = name.lower()
    text: str | None = None
    if key in _ADDRESS_HEADERS:
        text = _plain_addresses(value)
    elif (key in _UNSTRUCTURED or key.startswith("x-")) and isinstance(value, str):
        if _PLAIN_WORDS.match(value) and "=?" not in value:
            text = value
    elif key == "date" and isinstance(value, str) and _PLAIN_WORDS.match(value):
        text = value
    elif key == "message-id" and isinstance(value, str) and _PLAIN_MSG_ID.match(value):
        text = value
    if text is not None:
        if len(name) + 2 + len(text) <= _MAX_LINE:
            return f"{name}: {text}\r\n"
        if key in _UNSTRUCTURED or key.startswith("x-"):
            folded = _fold_words(name, text)
            if folded is not None:
                return folded
    return POLICY.header_factory(name, value).fold(policy=POLICY)


def _plain_addresses(value: Any) -> str | None:
    """"Name <a@b>, c@d" when every address needs neither quoting nor
    encoding, else None."""
    addresses = value if isinstance(value, list) else [value]
    rendered = []
    for address in addresses:
        if not isinstance(address, Address) or not _PLAIN_ADDR_SPEC.match(address.addr_spec):
            return None
        name = address.display_name
        if not name:
            rendered.append(address.addr_spec)
        elif _ATOM_PHRASE.match(name) and "=?" not in name:
            rendered.append(f"{name} <{address.addr_spec}>")
        else:
            return None
    return ", ".join(rendered)


def _fold_words(name: str, text: str) -> str | None:
    """Unstructured ASCII text folded at spaces the way the email package
    does it: the whole value on a line of its own if it fits there, else
    word by word; None when a word is too long for any line."""
    if len(text) + 1 <= _MAX_LINE:
        return f"{name}:\r\n {text}\r\n"
    lines = [f"{name}:"]
    for word in text.split(" "):
        if len(word) + 1 >= _MAX_LINE:
            return None
        if len(lines[-1]) + 1 + len(word) <= _MAX_LINE:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    return "\r\n".join(lines) + "\r\n"


def multipart_header(boundary: str) -> str:
    if _STANDARD_BOUNDARY.match(boundary):
        return f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
    return POLICY.header_factory(
        "Content-Type", f'multipart/alternative; boundary="{boundary}"').fold(policy=POLICY)


def text_part(subtype: str, text: str) -> str:
    """A text/<subtype> part in UTF-8, headers and body, CRLF line ends:
    what set_content() and the generator make of it."""
    cte, data = _encode_text(text)
    lines = _NEWLINES.split(data)
    body = "\r\n".join(lines)  # the generator's _write_lines
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n{body}")


_NEWLINES = re.compile(r"\r\n|\r|\n")


def _encode_text(string: str) -> tuple[str, str]:
    """email.contentmanager's choice of transfer encoding for UTF-8 text
    under a 7-bit policy, and the encoded text."""
    lines = string.encode("utf-8").splitlines()

    def embedded_body(lines: list[bytes]) -> bytes:
        return b"\r\n".join(lines) + b"\r\n"

    def normal_body(lines: list[bytes]) -> bytes:
        return b"\n".join(lines) + b"\n"

    if max((len(x) for x in lines), default=0) <= _MAX_LINE:
        try:
            return "7bit", normal_body(lines).decode("ascii")
        except UnicodeDecodeError:
            pass
    # quoprimime.body_encode encodes line by line, so the first ten lines'
    # encoding (the email package's sample for choosing) is the start of
    # the whole text's: each line is encoded once here
    encoded = _quoted_printable_lines(lines)
    sniff_qp = "\n".join(encoded[:10]) + "\n"
    sniff_base64 = binascii.b2a_base64(embedded_body(lines[:10]))
    if len(sniff_qp) > len(sniff_base64):
        data = embedded_body(lines)
        step = _MAX_LINE // 4 * 3
        return "base64", "".join(binascii.b2a_base64(data[i:i + step]).decode("ascii")
                                 for i in range(0, len(data), step))
    if len(lines) <= 10:
        return "quoted-printable", sniff_qp
    return "quoted-printable", "\n".join(encoded) + "\n"


# Characters quoted-printable bodies keep as they are (quoprimime's body
# map: printable ASCII but "=", space and tab; CR and LF never occur here).
_QP_UNSAFE = re.compile(r"[^\t\n -<>-~]+")


def _qp_escape(match: re.Match[str]) -> str:
    return "=" + match.group().encode("latin-1").hex("=").upper()


def _quoted_printable_lines(lines: list[bytes]) -> list[str]:
    """quoprimime.body_encode(b"\\n".join(lines) + b"\\n", 78) line by line
    (soft breaks inside an item): the same algorithm, with the escaping done
    by one regex over the whole text instead of a per-character table."""
    quoted = _QP_UNSAFE.sub(_qp_escape, b"\n".join(lines).decode("latin-1")).split("\n")
    return [line if (len(line) <= _MAX_LINE and line[-1:] not in (" ", "\t")) or not line
            else _qp_long_line(line) for line in quoted]


def _qp_long_line(line: str) -> str:
    """quoprimime.body_encode's loop for one (already escaped) line."""
    pieces: list[str] = []
    start = 0
    laststart = len(line) - 1 - _MAX_LINE
    while start <= laststart:
        stop = start + _MAX_LINE - 1
        if line[stop - 2] == "=":  # never split an escape sequence
            pieces.append(line[start:stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            pieces.append(line[start:stop])
            start = stop - 1
        else:
            pieces.append(line[start:stop] + "=")
            start = stop
    if line and line[-1] in " \t":  # whitespace at the end is quoted
        room = start - laststart
        if room >= 3:
            end = f"={ord(line[-1]):02X}"
        elif room == 2:
            end = line[-1] + "=\n"
        else:
            end = f"=\n={ord(line[-1]):02X}"
        pieces.append(line[start:-1] + end)
    else:
        pieces.append(line[start:])
    return "\n".join(pieces)


def make_boundary(parts: list[str]) -> str:
    """A random boundary as the email package makes one, that occurs in no
    part. (The email package's own check looks for a boundary line ending
    in LF only, so with CRLF line ends it never finds one; this one does.)"""
    token = random.randrange(sys.maxsize)
    boundary = "=" * 15 + f"{token:019d}" + "=="
    text = "\r\n".join(parts)
    candidate, counter = boundary, 0
    # any occurrence, not only a whole line: stricter, and no regex to
    # compile for every mail
    while "--" + candidate in text:
        candidate = f"{boundary}.{counter}"
        counter += 1
    return candidate
