"""Signed, expiring links that maildesk puts into mails: the satisfaction
survey, "mark as solved", the registration confirmation and the download
of a customer's file from an agent notice.

A link token is ``<subject>.<expiry>.<signature>``: the ticket number (or
customer id), the expiry as a Unix day in base 36, and a truncated
HMAC-SHA256 over purpose, subject and expiry. So a token for one purpose
never works for another, a changed number or a stretched expiry breaks the
signature, and verifying needs no database read. Lower-case base32, like
the reply tokens (mail/tokens.py): some mail clients and scanners lower-case
URLs.

Pure: the secret and a clock come from the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: What a link is for, and the path it lives under.
PURPOSES = {"csat": "/csat/", "solve": "/solve/", "confirm": "/confirm/", "file": "/files/"}

#: 26 base32 characters: 130 bits, far beyond guessing.
SIGNATURE_LENGTH = 26
_DAY = 86_400

_TOKEN = re.compile(r"^([0-9]{1,12})\.([0-9a-z]{1,8})\.([a-z2-7]{" + str(SIGNATURE_LENGTH) + "})$")


class BadLink(ValueError):
    """A link that is not ours, was changed, or has expired.

    `reason` is "malformed", "tampered" or "expired": the pages answer them
    differently (an expired link was real: the customer is told why).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LinkTarget:
    """What a verified token points at."""

    purpose: str
    subject: int  # ticket number, or customer id for "confirm"
    expires: datetime


def _sign(secret: bytes, purpose: str, subject: int, expiry: str) -> str:
    digest = hmac.new(secret, f"link:{purpose}:{subject}:{expiry}".encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:SIGNATURE_LENGTH]


def base36(value: int) -> str:
    """Short and case-free: link stamps travel in URLs that some clients lower-case."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        value, rest = divmod(value, 36)
        text = digits[rest] + text
        if not value:
            return text


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r} (known: {', '.join(PURPOSES)})")


def make_token(secret: bytes, purpose: str, subject: int, issued: datetime, days: int) -> str:
    """A token valid until the end of the UTC day `days` after `issued`.

    Whole days keep the token short and make it the same on every retry of
    the mail that carries it (the outbox row's creation time is `issued`).
    """
    _check_purpose(purpose)
    day = int(issued.astimezone(UTC).timestamp()) // _DAY + max(days, 0) + 1
    expiry = base36(day)
    return f"{subject}.{expiry}.{_sign(secret, purpose, subject, expiry)}"


def make_url(base_url: str, secret: bytes, purpose: str, subject: int, issued: datetime,
             days: int) -> str:
    """The full link for a mail: base URL (from [web] base_url) + path + token."""
    token = make_token(secret, purpose, subject, issued, days)
    return f"{base_url.rstrip('/')}{PURPOSES[purpose]}{token}"


def verify(secret: bytes, purpose: str, token: str, now: datetime) -> LinkTarget:
    """The target of a token; BadLink when malformed, forged or expired.

    The signature is checked before the expiry, so a tampered token is never
    reported as merely expired."""
    _check_purpose(purpose)
    token = token.strip()
    # ASCII first: str.lower() turns some non-ASCII letters (the Kelvin sign)
    # into ASCII ones, and a token is ASCII by construction.
    match = _TOKEN.match(token.lower()) if token.isascii() else None
    if not match:
        raise BadLink("malformed", "this is not a valid link")
    subject_text, expiry, signature = match.groups()
    subject = int(subject_text)
    if not hmac.compare_digest(_sign(secret, purpose, subject, expiry), signature):
        raise BadLink("tampered", "the link's signature does not match")
    expires = datetime.fromtimestamp(int(expiry, 36) * _DAY, UTC)
    if now >= expires:
        raise BadLink("expired", f"the link expired on {expires:%Y-%m-%d}")
    return LinkTarget(purpose, subject, expires)


def expires_in_days(expires: datetime, now: datetime) -> int:
    """Whole days left (for "valid for N more days" on a page)."""
    return max(0, (expires - now) // timedelta(days=1))
