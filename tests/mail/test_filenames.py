"""sanitise_filename: attachment names from strangers made safe, but recognisable."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.mail.filenames import MAX_FILENAME_BYTES, sanitise_filename

CASES: list[tuple[str | None, str]] = [
    # ordinary names stay as they are (umlauts included)
    ("report.pdf", "report.pdf"),
    ("Prüfbericht_März.pdf", "Prüfbericht_März.pdf"),
    ("Angebot 2024 (final).docx", "Angebot 2024 (final).docx"),
    ("日本語の資料.xlsx", "日本語の資料.xlsx"),
    # NFC: a decomposed "ü" (u + combining diaeresis) is composed
    ("Pru\u0308fbericht.pdf", "Prüfbericht.pdf"),
    # path components, both separators
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\System32\\cmd.exe", "cmd.exe"),
    ("C:\\Users\\jm\\Desktop\\Rechnung.pdf", "Rechnung.pdf"),
    ("/absolute/path/to/file.txt", "file.txt"),
    ("dir/", "attachment"),
    # hidden files and dot names
    (".htaccess", "htaccess"),
    ("...secret", "secret"),
    ("..", "attachment"),
    (".", "attachment"),
    (". .hidden", "hidden"),
    ("name.", "name"),
    ("trailing . . ", "trailing"),
    # control characters: C0, DEL, C1, NUL are dropped; tabs/newlines are spaces
    ("evil\x00name.txt", "evilname.txt"),
    ("bell\x07\x1b[31m.txt", "bell[31m.txt"),
    ("del\x7fete.txt", "delete.txt"),
    ("c1\x85\x9bchars.txt", "c1chars.txt"),
    ("two\twords\r\nhere.txt", "two words here.txt"),
    # bidi overrides and zero-width characters cannot disguise the extension
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("zero\u200bwidth\ufeff.txt", "zerowidth.txt"),
    # whitespace collapsed and stripped
    ("  lots   of\u00a0 space  .pdf", "lots of space .pdf"),
    # Windows-reserved characters
    ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
    # Windows device names
    ("CON", "_CON"),
    ("con.txt", "_con.txt"),
    ("NUL.tar.gz", "_NUL.tar.gz"),
    ("COM1.log", "_COM1.log"),
    ("lpt9", "_lpt9"),
    ("CONSOLE.txt", "CONSOLE.txt"),
    ("COM10.txt", "COM10.txt"),
    # empty results fall back
    (None, "attachment"),
    ("", "attachment"),
    ("   ", "attachment"),
    ("\x00\x01\x02", "attachment"),
    ("\ud800", "attachment"),
]


@pytest.mark.parametrize(("name", "expected"), CASES)
def test_sanitise_filename(name: str | None, expected: str) -> None:
    assert sanitise_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "fallback", "expected"),
    [
        (None, "image.png", "image.png"),
        ("..", "forwarded.eml", "forwarded.eml"),
        ("", "../evil", "evil"),
        ("", "", "attachment"),
        ("", "...", "attachment"),
    ],
)
def test_fallback_is_sanitised_too(name: str | None, fallback: str, expected: str) -> None:
    assert sanitise_filename(name, fallback=fallback) == expected


@pytest.mark.parametrize(
    ("name", "expected_suffix"),
    [
        ("a" * 496 + ".pdf", ".pdf"),
        ("ä" * 300 + ".docx", ".docx"),  # two bytes per character
        ("€" * 300 + ".xlsx", ".xlsx"),  # three bytes per character
        ("😀" * 100 + ".png", ".png"),  # four bytes per character
        ("x" * 300 + ".tar.gz", ".gz"),
    ],
)
def test_long_names_keep_their_extension(name: str, expected_suffix: str) -> None:
    result = sanitise_filename(name)
    assert len(result.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert result.endswith(expected_suffix)
    assert len(result.encode("utf-8")) > MAX_FILENAME_BYTES - 4  # cut, not emptied
    # the stem is a prefix of the original: no half characters, nothing invented
    assert name.startswith(result[: -len(expected_suffix)])


def test_long_name_exactly_at_limit() -> None:
    name = "b" * (MAX_FILENAME_BYTES - 4) + ".pdf"
    assert sanitise_filename(name) == name
    assert sanitise_filename("b" + name) == name


def test_absurdly_long_extension_is_not_protected() -> None:
    result = sanitise_filename("name." + "e" * 400)
    assert result.startswith("name.")
    assert len(result.encode("utf-8")) == MAX_FILENAME_BYTES


def test_truncation_never_leaves_trailing_dot_or_space() -> None:
    name = "a" * 195 + " . . ." + "b" * 100 + ".pdf"
    result = sanitise_filename(name)
    assert result.endswith(".pdf")
    assert not result[: -len(".pdf")].endswith((" ", "."))


_RESERVED = set('<>:"/\\|?*')


@settings(max_examples=300)
@given(st.text(max_size=600))
def test_any_text_gives_a_safe_name(name: str) -> None:
    result = sanitise_filename(name)
    assert result
    assert len(result.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert not result.startswith(".")
    assert not _RESERVED & set(result)
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in result)
    assert unicodedata.is_normalized("NFC", result) or result == "attachment"
    assert result == result.strip()
    assert sanitise_filename(result) == result  # idempotent
