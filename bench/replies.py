"""Quoted-history stripping over the labelled set in tests/mails/replies/ (issue 19).

Each case is a reply as a mail client writes it (``NAME.eml``) and what an
agent should see first (``NAME.expected.json``: ``display_text`` exactly, or
``display_contains`` / ``display_excludes`` where an HTML rendering makes
the exact text fragile; surrounding blank space does not count; ``source``
says where the case came from). Every mail goes through the real path:
parse_mail, then the display text the
ticket store keeps (maildesk.mail.quoting.message_display_text).

Prints "replies stripped right: N/M" and the cases that are wrong.
Run: .venv/bin/python -m bench.replies [-v]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from maildesk.mail.parse import parse_mail
from maildesk.mail.quoting import message_display_text

CASES = Path(__file__).parents[1] / "tests" / "mails" / "replies"


@dataclass(frozen=True)
class Verdict:
    name: str
    expected: dict
    display: str

    @property
    def problems(self) -> list[str]:
        """What is wrong with the display text; empty when it is right."""
        wrong = []
        exact = self.expected.get("display_text")
        if exact is not None and self.display.strip() != exact:
            wrong.append("display text differs")
        for part in self.expected.get("display_contains", []):
            if part not in self.display:
                wrong.append(f"misses {part!r}")
        for part in self.expected.get("display_excludes", []):
            if part in self.display:
                wrong.append(f"still shows {part!r}")
        return wrong

    @property
    def right(self) -> bool:
        return not self.problems


def case_names() -> list[str]:
    return sorted(p.name.removesuffix(".eml") for p in CASES.glob("*.eml"))


def judge(name: str) -> Verdict:
    expected = json.loads((CASES / f"{name}.expected.json").read_text(encoding="utf-8"))
    mail = parse_mail((CASES / f"{name}.eml").read_bytes())
    return Verdict(name, expected, message_display_text(mail.subject, mail.text))


def summary(verdicts: list[Verdict]) -> str:
    right = sum(v.right for v in verdicts)
    return f"replies stripped right: {right}/{len(verdicts)}"


def main(argv: list[str]) -> int:
    verdicts = [judge(name) for name in case_names()]
    for verdict in verdicts:
        if not verdict.right:
            print(f"WRONG {verdict.name} ({verdict.expected.get('source', '?')}): "
                  f"{'; '.join(verdict.problems)}")
            if "-v" in argv:
                print("    got: " + verdict.display.replace("\n", "\n         "))
    print(summary(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
