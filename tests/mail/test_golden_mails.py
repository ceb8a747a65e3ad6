"""Golden mails: real-world shaped .eml files and what parse_mail must make of them.

Each ``tests/mails/NAME.eml`` has a ``NAME.expected.json`` next to it. The
expectations were written by hand (attachment hashes are of the bytes the
sender encoded, not of what the parser returned), so a regression in any
part of the parser shows up here as a concrete, reviewable difference.

Keys: subject, from ({email, name} or null), to, cc (lists of addresses),
message_id, text_contains, html_contains, html_not_contains, attachments
(list of {filename, content_type, size, sha256}), problems_nonempty.
Optional: text_not_contains, to_names, in_reply_to, references,
return_path, and per attachment original_filename, inline, content_id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from maildesk.mail.parse import looks_like_mail, parse_mail
from tests.conftest import REPO

MAILS = REPO / "tests" / "mails"
FIXTURES = sorted(p.name.removesuffix(".eml") for p in MAILS.glob("*.eml"))


def _expected(name: str) -> dict[str, Any]:
    return json.loads((MAILS / f"{name}.expected.json").read_text(encoding="utf-8"))


def test_fixtures_are_present() -> None:
    """Guard against a glob that silently matches nothing."""
    assert len(FIXTURES) >= 13
    for name in FIXTURES:
        assert (MAILS / f"{name}.expected.json").is_file(), name


@pytest.mark.parametrize("name", FIXTURES)
def test_golden_mail(name: str) -> None:
    raw = (MAILS / f"{name}.eml").read_bytes()
    want = _expected(name)
    mail = parse_mail(raw)

    assert looks_like_mail(raw)
    assert mail.subject == want["subject"]
    if want["from"] is None:
        assert mail.from_ is None
    else:
        assert mail.from_ is not None
        assert (mail.from_.email, mail.from_.name) == (want["from"]["email"], want["from"]["name"])
    assert [a.email for a in mail.to] == want["to"]
    assert [a.email for a in mail.cc] == want["cc"]
    if "to_names" in want:
        assert [a.name for a in mail.to] == want["to_names"]
    assert mail.message_id == want["message_id"]
    if "in_reply_to" in want:
        assert list(mail.in_reply_to) == want["in_reply_to"]
    if "references" in want:
        assert list(mail.references) == want["references"]
    if "return_path" in want:
        assert mail.return_path == want["return_path"]

    for fragment in want["text_contains"]:
        assert fragment in mail.text
    for fragment in want.get("text_not_contains", []):
        assert fragment not in mail.text
    for fragment in want["html_contains"]:
        assert fragment in mail.html
    for fragment in want["html_not_contains"]:
        assert fragment not in mail.html

    got = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "sha256": hashlib.sha256(a.payload).hexdigest(),
        }
        for a in mail.attachments
    ]
    core_keys = ("filename", "content_type", "size", "sha256")
    assert got == [{k: a[k] for k in core_keys} for a in want["attachments"]]
    for attachment, wanted in zip(mail.attachments, want["attachments"], strict=True):
        for key in ("original_filename", "inline", "content_id"):
            if key in wanted:
                assert getattr(attachment, key) == wanted[key], key

    assert bool(mail.problems) == want["problems_nonempty"], mail.problems
