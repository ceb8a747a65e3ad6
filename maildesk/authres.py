"""TEMPORARY minimal stand-in (replaced by the helper's module)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SenderVerdict:
    verdict: str
    detail: str


def judge_sender(
    headers: Sequence[str], trusted: Collection[str], from_domain: str
) -> SenderVerdict:
    for value in headers:
        ident, _, rest = value.partition(";")
        if ident.strip().split()[0].lower() not in trusted if ident.strip() else True:
            continue
        low = rest.lower()
        if "dmarc=pass" in low and f"header.from={from_domain}" in low:
            return SenderVerdict(
                "pass", f"dmarc=pass header.from={from_domain} (by {ident.strip()})"
            )
        if "dmarc=fail" in low:
            return SenderVerdict(
                "fail", f"dmarc=fail header.from={from_domain} (by {ident.strip()})"
            )
        return SenderVerdict("none", "")
    return SenderVerdict("none", "")
