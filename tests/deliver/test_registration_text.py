"""The registration mail says only what is true today (issue #15): there is
no view in which a confirmed address makes tickets visible to colleagues
(the customers' portal is still to come), so it must not promise one."""

from __future__ import annotations

import pytest

from maildesk.deliver.render import Renderer
from maildesk.mail.htmlsafe import html_to_text
from tests.deliver.test_render import context

PROMISES = ("sichtbar", "visible", "Portal", "portal", "einsehen", " see ")
WHAT_IS_TRUE = {"de": "bestätigte Adresse", "en": "confirmed address"}


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_registration_mail_promises_no_view(language: str) -> None:
    out = Renderer().render("registration", language, context())
    for part in (out.text, html_to_text(out.html)):
        assert not [word for word in PROMISES if word in part], part
        assert WHAT_IS_TRUE[language] in " ".join(part.split())
    assert "https://support.example/confirm/abc" in out.text
    assert "https://support.example/confirm/abc" in out.html
