"""The portal's profile form, checked without a server or database
(web/portal/profile_form.py, issue 16)."""

from __future__ import annotations

import pytest

from maildesk.web.portal import profile_form as form


def posted(**fields: str) -> dict[str, str]:
    return {"name": "Erika Mustermann", "phone": "+49 30 1234567",
            "job_title": "Einkauf", "language": "de", **fields}


def test_a_correct_form_gives_the_profile_as_typed() -> None:
    checked = form.check(posted(info_recipient="yes"))
    assert checked.ok and checked.errors == {}
    assert checked.profile == form.Profile("Erika Mustermann", "+49 30 1234567", "Einkauf",
                                           "de", True)


def test_an_unticked_checkbox_is_no_information_recipient() -> None:
    assert form.check(posted()).profile.info_recipient is False
    assert form.check(posted(info_recipient="on")).profile.info_recipient is False


@pytest.mark.parametrize("phone", ["030 / 123 45-6", "(030) 1234567", "+49-30-1234567", ""])
def test_phone_numbers_as_people_write_them(phone: str) -> None:
    checked = form.check(posted(phone=phone))
    assert checked.ok and checked.profile.phone == phone


@pytest.mark.parametrize("phone", ["030 123 DURCHWAHL", "030.1234567", "+49 30 <b>",
                                   "0301234567;drop"])
def test_a_phone_with_other_characters_is_refused(phone: str) -> None:
    checked = form.check(posted(phone=phone))
    assert checked.errors == {"phone": form.PHONE_CHARS}
    assert checked.profile.phone == phone  # shown again as typed


def test_limits_are_counted_in_characters_after_trimming() -> None:
    fits = form.check(posted(name=" " + "ä" * 200 + " ", phone="1" * 50, job_title="x" * 100))
    assert fits.ok and fits.profile.name == "ä" * 200
    over = form.check(posted(name="ä" * 201, phone="1" * 51, job_title="x" * 101))
    assert over.errors == {"name": form.TOO_LONG, "phone": form.TOO_LONG,
                           "job_title": form.TOO_LONG}
    assert list(over.errors) == ["name", "phone", "job_title"]  # the page's order


def test_control_characters_are_removed_and_line_breaks_become_blanks() -> None:
    checked = form.check(posted(name="Erika\x00 \u202eMuster\x1b\x7fmann",
                                job_title="Leiterin\r\nEinkauf\t"))
    assert checked.ok
    assert checked.profile.name == "Erika Mustermann"
    assert checked.profile.job_title == "Leiterin Einkauf"


def test_only_the_portals_languages_and_the_current_one_stays_on_error() -> None:
    assert form.check(posted(language="en")).profile.language == "en"
    assert form.check(posted(language=" EN ")).profile.language == "en"
    refused = form.check(posted(language="fr"), current_language="en")
    assert refused.errors == {"language": form.UNKNOWN_LANGUAGE}
    assert refused.profile.language == "en"
    assert form.check(posted(language="fr"), languages=("de", "en", "fr")).ok


def test_fields_of_other_kinds_are_not_read() -> None:
    checked = form.check(posted(customer_id="2", email="boss@kunde.de", role="admin"))
    assert set(checked.profile.values()) == set(form.FIELDS)
    assert "boss@kunde.de" not in checked.profile.values().values()


def test_a_missing_field_is_empty_not_an_error() -> None:
    checked = form.check({"language": "de"})
    assert checked.ok and checked.profile == form.Profile()
