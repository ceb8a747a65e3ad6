"""The labelled replies in tests/mails/replies/ (issue 19): every client and
language, each through parse_mail and the display text the ticket keeps.

Run with -s to see "replies stripped right: N/M" (also: python -m bench.replies).
"""

from __future__ import annotations

import json

import pytest

from bench.replies import CASES, case_names, judge, summary

NAMES = case_names()


def test_the_set_is_there_and_every_case_names_its_source() -> None:
    """Guard against a glob that silently matches nothing."""
    assert len(NAMES) >= 60
    for name in NAMES:
        expected = json.loads((CASES / f"{name}.expected.json").read_text(encoding="utf-8"))
        assert expected.get("source"), name
        assert {"display_text", "display_contains", "display_excludes"} & expected.keys(), name


#: Cases today's rules get wrong, kept as a ratchet: each is a strict xfail,
#: so one that starts to pass fails here until it is taken off the list.
#: OTRS' name-first intros ("<date> - <name> schrieb:"), the verbless Gmail
#: ru / Yandex intros and an Apple fr forward without a subject prefix are
#: not recognised yet.
NOT_YET = frozenset({
    "forward_apple_fr", "gmail_web_ru", "otrs_de", "otrs_en", "yandex_ru",
})


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="not yet recognised"))
    if name in NOT_YET else name for name in NAMES])
def test_reply_is_stripped_right(name: str) -> None:
    verdict = judge(name)
    assert verdict.right, (verdict.problems, verdict.display)


def test_summary_figure(capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = [judge(name) for name in NAMES]
    with capsys.disabled():
        print("\n" + summary(verdicts))
    assert sum(v.right for v in verdicts) >= len(NAMES) - len(NOT_YET)
