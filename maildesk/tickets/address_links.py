"""Signed links that name an address: "unsubscribe from announcements"
(List-Unsubscribe, RFC 8058) and "stop sending me mails of this ticket"
(a CC or follower removing themselves). Pure: secret and clock come from
the caller.

Unsubscribe token ``<address in base32>.<signature>``: it names the address
itself (an information recipient need not stay a customer, and the
unsubscribe table is by address) and never expires: an announcement read
a year later must still unsubscribe, and what it does is harmless.

Removal token ``<participant id>.<issued>.<signature>``: the signature
covers the participant row, the ticket number and the address, so the link
only removes that address from that ticket, and once the address is
removed the old link finds nothing to remove; removed and added again by
an agent, the link is older than the addition and removes nothing
either. It expires REMOVAL_LINK_DAYS after it was issued. The address
is not in the URL (a forwarded link does not show it).

Lower-case base32 throughout, like tickets/links.py: some mail clients and
scanners lower-case URLs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from maildesk.tickets.links import SIGNATURE_LENGTH, BadLink, base36

#: Where the links live.
UNSUBSCRIBE_PATH = "/unsubscribe/"
REMOVAL_PATH = "/stop/"
#: How long a removal link in a ticket mail works.
REMOVAL_LINK_DAYS = 365
_MAX_ADDRESS = 320

_UNSUBSCRIBE = re.compile(r"^([a-z2-7]{1,520})\.([a-z2-7]{" + str(SIGNATURE_LENGTH) + "})$")
_REMOVAL = re.compile(r"^([0-9]{1,12})\.([0-9a-z]{1,10})\.([a-z2-7]{"
                      + str(SIGNATURE_LENGTH) + "})$")


def _sign(secret: bytes, text: str) -> str:
    digest = hmac.new(secret, text.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:SIGNATURE_LENGTH]


def _b32(text: str) -> str:
    return base64.b32encode(text.encode()).decode().rstrip("=").lower()


def _unb32(text: str) -> str:
    padded = text.upper() + "=" * (-len(text) % 8)
    return base64.b32decode(padded).decode()


def _ascii_lower(token: str) -> str | None:
    token = token.strip()
    return token.lower() if token.isascii() else None


# -- unsubscribe ---------------------------------------------------------------------------------


def unsubscribe_token(secret: bytes, email: str) -> str:
    address = email.strip().lower()
    return f"{_b32(address)}.{_sign(secret, f'unsubscribe:{address}')}"


def unsubscribe_url(base_url: str, secret: bytes, email: str) -> str:
    return f"{base_url.rstrip('/')}{UNSUBSCRIBE_PATH}{unsubscribe_token(secret, email)}"


def verify_unsubscribe(secret: bytes, token: str) -> str:
    """The address a token names; BadLink when it is not one of ours."""
    lowered = _ascii_lower(token)
    match = _UNSUBSCRIBE.match(lowered) if lowered else None
    if not match:
        raise BadLink("malformed", "this is not a valid link")
    try:
        address = _unb32(match.group(1))
    except (ValueError, UnicodeDecodeError):
        raise BadLink("malformed", "this is not a valid link") from None
    if len(address) > _MAX_ADDRESS or "@" not in address:
        raise BadLink("malformed", "this is not a valid link")
    if not hmac.compare_digest(_sign(secret, f"unsubscribe:{address}"), match.group(2)):
        raise BadLink("tampered", "the link's signature does not match")
    return address


# -- a CC or follower stops the mails of a ticket ------------------------------------------------


@dataclass(frozen=True)
class RemovalClaim:
    """A removal token taken apart, before the row it names is read."""

    participant_id: int
    issued_text: str
    signature: str

    @property
    def issued(self) -> datetime:
        return datetime.fromtimestamp(int(self.issued_text, 36) / 1000, UTC)

    def expires(self, days: int = REMOVAL_LINK_DAYS) -> datetime:
        return self.issued + timedelta(days=days)


def _removal_text(participant_id: int, number: int, email: str, issued: str) -> str:
    return f"stop:{participant_id}:{number}:{email.strip().lower()}:{issued}"


def removal_token(secret: bytes, participant_id: int, number: int, email: str,
                  issued: datetime) -> str:
    """Carries its issue time (the outbox row's creation: every retry of a
    mail carries the same link), so a link older than the address's
    latest addition to the ticket is known for a replay."""
    stamp = base36(int(issued.astimezone(UTC).timestamp() * 1000))  # ms
    signature = _sign(secret, _removal_text(participant_id, number, email, stamp))
    return f"{participant_id}.{stamp}.{signature}"


def removal_url(base_url: str, secret: bytes, participant_id: int, number: int, email: str,
                issued: datetime) -> str:
    token = removal_token(secret, participant_id, number, email, issued)
    return f"{base_url.rstrip('/')}{REMOVAL_PATH}{token}"


def parse_removal(token: str) -> RemovalClaim:
    """The parts of a removal token; BadLink("malformed") when it has none."""
    lowered = _ascii_lower(token)
    match = _REMOVAL.match(lowered) if lowered else None
    if not match:
        raise BadLink("malformed", "this is not a valid link")
    return RemovalClaim(int(match.group(1)), match.group(2), match.group(3))


def check_removal(secret: bytes, claim: RemovalClaim, number: int, email: str,
                  now: datetime, added_at: datetime | None = None,
                  days: int = REMOVAL_LINK_DAYS) -> None:
    """BadLink unless the claim was signed for this participant row of
    ticket `number` and `email`, has not expired, and is not older than the
    address's latest addition (`added_at`: removed and added again, the old
    link is a replay). The signature is checked first: a forgery is never
    reported as merely expired."""
    expected = _sign(secret, _removal_text(claim.participant_id, number, email,
                                           claim.issued_text))
    if not hmac.compare_digest(expected, claim.signature):
        raise BadLink("tampered", "the link's signature does not match")
    if now >= claim.expires(days):
        raise BadLink("expired", f"the link expired on {claim.expires(days):%Y-%m-%d}")
    if added_at is not None:
        if added_at.tzinfo is None:
            added_at = added_at.replace(tzinfo=UTC)
        if added_at > claim.issued + timedelta(milliseconds=1):
            raise BadLink("malformed", "the link is older than the address's addition")
