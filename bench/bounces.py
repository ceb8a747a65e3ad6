"""Bounce recognition over the labelled set in tests/mails/bounces/ (issue 19).

Prints recall (bounces recognised / bounces), false bounces on the
non-bounces, and recipient accuracy (bounces whose marked recipients and
permanence are exactly as labelled). Run: .venv/bin/python -m bench.bounces
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from maildesk.mail import automatic
from maildesk.mail.parse import parse_mail

CASES = Path(__file__).parents[1] / "tests" / "mails" / "bounces"


@dataclass(frozen=True)
class Verdict:
    name: str
    expected: dict
    bounce: bool
    marked: tuple[str, ...]
    delayed: tuple[str, ...]

    @property
    def recipients_right(self) -> bool:
        return (sorted(self.marked) == sorted(self.expected.get("recipients", []))
                and sorted(self.delayed) == sorted(self.expected.get("delayed", [])))


def judge(path: Path) -> Verdict:
    """What maildesk makes of one case: bounce or not, whom it marks."""
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    mail = parse_mail(path.read_bytes())
    bounce = automatic.bounce_reason(mail) is not None
    report = mail.report
    return Verdict(path.stem, expected, bounce,
                   report.failed if (bounce and report) else (),
                   report.delayed if (bounce and report) else ())


def cases() -> list[Path]:
    return sorted(CASES.glob("*.eml"))


def summary(verdicts: list[Verdict]) -> dict[str, float | int]:
    bounces = [v for v in verdicts if v.expected["bounce"]]
    others = [v for v in verdicts if not v.expected["bounce"]]
    return {
        "bounces": len(bounces),
        "recognised": sum(v.bounce for v in bounces),
        "recall": round(100 * sum(v.bounce for v in bounces) / max(1, len(bounces)), 1),
        "non_bounces": len(others),
        "false_bounces": sum(v.bounce for v in others),
        "recipients_right": sum(v.recipients_right for v in bounces),
        "recipient_accuracy": round(
            100 * sum(v.recipients_right for v in bounces) / max(1, len(bounces)), 1),
    }


def main() -> None:
    verdicts = [judge(path) for path in cases()]
    for v in verdicts:
        if v.bounce != v.expected["bounce"] or (v.expected["bounce"] and not v.recipients_right):
            print(f"WRONG {v.name}: bounce={v.bounce} marked={v.marked} delayed={v.delayed}")
    print(json.dumps(summary(verdicts)))


if __name__ == "__main__":
    main()
