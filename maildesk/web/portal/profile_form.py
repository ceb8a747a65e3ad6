"""The portal's profile form, checked: pure, no I/O (issue 16).

What a customer may change of themselves: name, phone, job title, the
language their pages and mails are in, and whether they receive product
information (information recipient). Nothing else is read from the form:
a posted `customer_id`, `email` or `role` is not a field here, so it can
change nothing (whose profile it is comes from the session alone).

Control characters (and the bidirectional overrides that make text read
differently than it is stored) are removed rather than refused: they come
from pasting, and nobody means them. Limits are counted after that, on
the trimmed text. Errors are codes per field; the templates word them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

NAME, PHONE, JOB_TITLE, LANGUAGE, INFO = "name", "phone", "job_title", "language", \
    "info_recipient"
#: The form's fields, in the order the page shows them (and the summary lists errors).
FIELDS = (NAME, PHONE, JOB_TITLE, LANGUAGE, INFO)
#: The languages the portal has pages and mails in.
LANGUAGES = ("de", "en")
LIMITS = {NAME: 200, PHONE: 50, JOB_TITLE: 100}
#: The value a ticked information-recipient checkbox sends.
YES = "yes"
#: Digits, spaces and + - / ( ) only, as people write numbers.
_PHONE = re.compile(r"^[0-9 +\-/()]*$")
#: Line breaks and tabs: a blank in one line of text.
_BREAKS = re.compile(r"[\t\n\r\v\f]+")
#: C0 and C1 controls, DEL, and the bidi embedding/override/isolate marks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: Error codes (the templates say what each means).
TOO_LONG, PHONE_CHARS, UNKNOWN_LANGUAGE = "too_long", "phone_chars", "language"


@dataclass(frozen=True)
class Profile:
    """The values as the customer means them (cleaned); also what the
    page shows again after an error."""

    name: str = ""
    phone: str = ""
    job_title: str = ""
    language: str = "de"
    info_recipient: bool = False

    def values(self) -> dict[str, str | bool]:
        return {NAME: self.name, PHONE: self.phone, JOB_TITLE: self.job_title,
                LANGUAGE: self.language, INFO: self.info_recipient}


@dataclass(frozen=True)
class Checked:
    profile: Profile
    #: field -> error code; empty when the profile may be saved.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def clean(value: str | None) -> str:
    """One line of text: no control characters, no surrounding blanks."""
    return _CONTROL.sub("", _BREAKS.sub(" ", value or "")).strip()


def check(fields: Mapping[str, str], languages: tuple[str, ...] = LANGUAGES,
          current_language: str = "de") -> Checked:
    """The posted form as a Profile and its errors. An unknown language is
    an error, and the page keeps showing `current_language` meanwhile."""
    errors: dict[str, str] = {}
    texts = {}
    for name, limit in LIMITS.items():
        texts[name] = clean(fields.get(name))
        if len(texts[name]) > limit:
            errors[name] = TOO_LONG
    if PHONE not in errors and not _PHONE.match(texts[PHONE]):
        errors[PHONE] = PHONE_CHARS
    language = clean(fields.get(LANGUAGE)).lower()
    if language not in languages:
        errors[LANGUAGE] = UNKNOWN_LANGUAGE
        language = current_language
    profile = Profile(texts[NAME], texts[PHONE], texts[JOB_TITLE], language,
                      fields.get(INFO) == YES)
    return Checked(profile, {f: errors[f] for f in FIELDS if f in errors})
