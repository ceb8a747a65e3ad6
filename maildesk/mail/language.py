"""A new customer's language, read from their first mail.

Outlook and Exchange write `Content-Language` (the language the mail is
written in) and `Accept-Language` (the language of the sender's Office);
Thunderbird and Apple Mail write `Content-Language` when set. A customer
whose first mail says English gets English mails and pages; anything we
have no templates for gets the configured default. Agents can change it
later (`maildesk customers set EMAIL --language en`).

Pure: headers in, a language code out.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Languages maildesk ships mail and page templates for.
SUPPORTED = ("de", "en")


def _tags(value: str) -> list[str]:
    """Primary language subtags of a header value, in order of preference.

    "de-DE, en-US" -> [de, en]; quality values are honoured ("en;q=0.5,
    de" -> [de, en]); junk is skipped."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().replace("_", "-").split("-", 1)[0]
        if primary.isalpha() and 2 <= len(primary) <= 3 and quality > 0:
            weighted.append((-quality, position, primary))
    return [tag for _, _, tag in sorted(weighted)]


def mail_language(headers: Mapping[str, str], default: str,
                  supported: tuple[str, ...] = SUPPORTED) -> str:
    """The first supported language the mail's headers name, else `default`."""
    for name in ("content-language", "accept-language"):
        for tag in _tags(headers.get(name, "")):
            if tag in supported:
                return tag
    return default
