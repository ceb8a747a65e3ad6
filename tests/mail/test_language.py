"""A new customer's language from their first mail's headers (names lower-cased, as
the parser gives them)."""

from __future__ import annotations

import pytest

from maildesk.mail.language import SUPPORTED, mail_language


def lang(default: str = "de", **headers: str) -> str:
    return mail_language({name.replace("_", "-"): value for name, value in headers.items()},
                         default)


def test_supported_languages() -> None:
    assert SUPPORTED == ("de", "en")


@pytest.mark.parametrize(("value", "expected"), [
    ("en-US", "en"),
    ("en", "en"),
    ("en-GB", "en"),
    ("en_US", "en"),
    ("EN", "en"),
    ("En-Us", "en"),
    ("de-AT", "de"),
    ("  en-US  ", "en"),
])
def test_content_language(value: str, expected: str) -> None:
    assert lang("xx", content_language=value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("de-DE, en-US", "de"),
    ("en-US, de-DE", "en"),
    ("en-US,de-DE", "en"),
    ("fr-FR, en-US", "en"),          # first supported one
    ("fr-FR, it, de", "de"),
    ("en;q=0.5, de;q=0.9", "de"),
    ("en;q=0.5, de", "de"),          # no q means 1
    ("de;q=0.1, fr, en;q=0.2", "en"),
    ("en;Q=0.3, de;q=0.2", "en"),
    ("de;q=0.8, en;q=0.8", "de"),    # a tie keeps the header's order
    ("en;q=0.8, de;q=0.8", "en"),
    ("en;q=0, de;q=0.1", "de"),      # q=0 means "not this one"
    ("*, en;q=0.5", "en"),
])
def test_accept_language(value: str, expected: str) -> None:
    assert lang("xx", accept_language=value) == expected


def test_content_language_wins_over_accept_language() -> None:
    assert lang("xx", content_language="en-US", accept_language="de-DE") == "en"
    assert lang("xx", content_language="de-DE", accept_language="en-US") == "de"


def test_unsupported_content_language_falls_back_to_accept_language() -> None:
    assert lang("xx", content_language="fr-FR", accept_language="en-US") == "en"


@pytest.mark.parametrize("default", ["de", "en"])
@pytest.mark.parametrize("headers", [
    {},
    {"content-language": "fr-FR"},
    {"accept-language": "fr-FR, it-IT;q=0.8"},
    {"content-language": "fr", "accept-language": "es"},
    {"content-language": ""},
    {"accept-language": ""},
    {"content-language": ",,,;;;"},
    {"accept-language": "*"},
    {"accept-language": "en;q=0, de;q=0"},
    {"content-language": "123, 4-5"},
    {"content-language": "e"},
    {"content-language": "english"},
    {"content-language": "x-en"},
    {"content-language": "\x00\n\t"},
    {"subject": "en", "from": "en@example.com"},
])
def test_unsupported_or_junk_gives_the_default(headers: dict[str, str], default: str) -> None:
    assert mail_language(headers, default) == default


def test_default_is_returned_as_given() -> None:
    assert mail_language({}, "") == ""
    assert mail_language({"content-language": "fr"}, "nl") == "nl"


def test_header_names_are_looked_up_lower_cased() -> None:
    assert mail_language({"content-language": "en"}, "de") == "en"
    assert mail_language({"accept-language": "en"}, "de") == "en"
    # the parser lower-cases names; a mapping with other spellings is not searched
    assert mail_language({"Content-Language": "en", "Accept-Language": "en"}, "de") == "de"


def test_supported_can_be_narrowed_or_widened() -> None:
    assert mail_language({"accept-language": "en, de"}, "de", supported=("de",)) == "de"
    assert mail_language({"content-language": "fr-CA"}, "de",
                         supported=("de", "en", "fr")) == "fr"
