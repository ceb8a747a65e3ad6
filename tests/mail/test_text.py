"""mail/text.py: the one scrub for text from strangers."""

from __future__ import annotations

from maildesk.mail.text import clean, encodable, printable

UNDECODABLE = b"Gr\xfc\xdfe".decode("utf-8", "surrogateescape")  # what 8-bit junk becomes


def test_encodable_replaces_or_drops_lone_surrogates_only() -> None:
    assert encodable(UNDECODABLE) == "Gr??e"
    assert encodable(UNDECODABLE, "") == "Gre"
    assert encodable("Grüße 😀") == "Grüße 😀"  # real text, astral planes included
    encodable(UNDECODABLE).encode("utf-8")  # never raises afterwards


def test_clean_is_what_postgresql_and_templates_accept() -> None:
    assert clean("a\x00b" + UNDECODABLE) == "abGr??e"
    assert clean("Zeile 1\nZeile 2\t!") == "Zeile 1\nZeile 2\t!"  # layout stays


def test_printable_keeps_a_one_line_field_to_printable_characters() -> None:
    assert printable("<id\r\n\x00@host>") == "<id@host>"
    assert printable("kunde@firma.de" + UNDECODABLE) == "kunde@firma.deGre"
    assert printable("Jürgen <j@ex.de>") == "Jürgen <j@ex.de>"
