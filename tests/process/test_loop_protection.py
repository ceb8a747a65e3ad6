"""Two autoresponders answering each other through maildesk: the exchange
must stop after the rate limit, with a bounded number of mails kept."""

from __future__ import annotations

from collections import Counter

from tests.conftest import Desk
from tests.mailfactory import make_mail


def test_two_autoresponders_stop_after_the_rate_limit(desk: Desk) -> None:
    """Robot A sends without any auto-reply marker (the worst case); robot B
    answers everything, also unmarked. Each mail of theirs would make
    maildesk answer (acknowledgement) and them answer back: 60 rounds."""
    outcomes: Counter[str] = Counter()
    for round_ in range(30):
        for robot in ("robot-a@firma-a.de", "robot-b@firma-b.de"):
            raw = make_mail(sender=robot, subject=f"Re: Ihre Anfrage ({round_})",
                            body="Vielen Dank für Ihre Nachricht.\n")
            code, out = desk.ingest(raw)
            assert code == 0
            outcomes[out["action"] if out["action"] != "ignored" else out["reason"]] += 1
    limit = desk.settings.loops.rate_limit_count
    assert outcomes == {"created": 2 * limit, "rate_limited": 60 - 2 * limit}
    assert len(desk.list("--limit", "1000")) == 2 * limit


def test_marked_autoresponder_never_makes_a_ticket(desk: Desk) -> None:
    for round_ in range(5):
        raw = make_mail(sender="urlaub@firma.de", subject=f"Abwesenheitsnotiz ({round_})",
                        extra_headers={"Auto-Submitted": "auto-replied"})
        code, out = desk.ingest(raw)
        assert (code, out["action"], out["reason"]) == (0, "ignored", "auto_reply")
    assert desk.list() == []
