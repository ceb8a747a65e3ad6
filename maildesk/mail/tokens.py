"""Signed references that tie a mail to its ticket: our Message-IDs, the
reply token in the plus-address, the reference line in the body, and the
subject tag. Pure functions over a secret; no database read is needed to
verify a signature, and nobody without the secret can forge one.

Signatures are truncated HMAC-SHA256 in lower-case base32 (no padding):
case-insensitive on purpose, because some MTAs and clients lower-case
addresses, and free of characters that need quoting in an address.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

#: Signature lengths in base32 characters (5 bits each).
MESSAGE_ID_SIG = 16  # 80 bits
TOKEN_SIG = 13  # 65 bits: unguessable, still short enough for an address

_MESSAGE_ID = re.compile(r"^md\.(\d{1,12})\.([a-z0-9]{1,40})\.([a-z2-7]+)@", re.IGNORECASE)
_TOKEN = re.compile(r"^(\d{1,12})-([a-z2-7]+)$", re.IGNORECASE)
_BODY_REFERENCE = re.compile(r"\[ref:(\d{1,12})\.([a-z2-7]{13})\]", re.IGNORECASE)

#: Reply and forward prefixes of German, English and Nordic/French mail
#: clients (Outlook writes "AW:" and "WG:", Lotus "Antw:", Apple "Wtr:").
_PREFIXES = (
    "re", "aw", "antw", "antwort", "wg", "fwd", "fw", "wtr", "tr", "sv", "vs", "rif",
)
_PREFIX_WORDS = "|".join(sorted(map(re.escape, _PREFIXES), key=len, reverse=True))
_PREFIX = re.compile(
    r"^\s*(?:(?:" + _PREFIX_WORDS + r")\s*(?:\[\d+\]|\(\d+\))?\s*[:：]|\[[^\[\]#]{1,40}\])\s*",
    re.IGNORECASE,
)


def _sign(secret: bytes, purpose: str, value: str, length: int) -> str:
    digest = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:length]


def new_message_id(secret: bytes, number: int, domain: str) -> str:
    """A fresh Message-ID (without <>) for a mail about ticket `number`."""
    unique = secrets.token_hex(8)
    signature = _sign(secret, "mid", f"{number}.{unique}", MESSAGE_ID_SIG)
    return f"md.{number}.{unique}.{signature}@{domain}"


def ticket_of_message_id(secret: bytes, message_id: str) -> int | None:
    """The ticket of one of our Message-IDs; None for others and forgeries."""
    match = _MESSAGE_ID.match(message_id.strip().strip("<>"))
    if not match:
        return None
    number, unique, signature = match.groups()
    expected = _sign(secret, "mid", f"{int(number)}.{unique.lower()}", MESSAGE_ID_SIG)
    return int(number) if hmac.compare_digest(expected, signature.lower()) else None


def looks_like_our_message_id(message_id: str) -> bool:
    """Shaped like ours (signature not checked): a forged one is suspicious."""
    return bool(_MESSAGE_ID.match(message_id.strip().strip("<>")))


@functools.lru_cache(maxsize=4096)
def reply_token(secret: bytes, number: int) -> str:
    """Cached: every mail of a ticket carries the same one."""
    return f"{number}-{_sign(secret, 'token', str(number), TOKEN_SIG)}"


def ticket_of_token(secret: bytes, token: str) -> int | None:
    match = _TOKEN.match(token.strip())
    if not match:
        return None
    number, signature = int(match.group(1)), match.group(2).lower()
    expected = _sign(secret, "token", str(number), TOKEN_SIG)
    return number if hmac.compare_digest(expected, signature) else None


_AGENT_TOKEN = re.compile(r"^(\d{1,12})-agent-([a-z2-7]+)$", re.IGNORECASE)


def agent_reply_token(secret: bytes, number: int, agent_email: str) -> str:
    """The token of an agent's own reply address for one ticket.

    It proves that a mail From an agent was addressed to what only that
    agent received (their notice about this ticket): the signature covers
    the ticket and the agent's address, so a customer's token, another
    agent's token or another ticket's token proves nothing. The address is
    not in the token; the mail's From names it, and the signature must
    match that From."""
    signature = _sign(secret, "agent-token", f"{number}:{agent_email.lower()}", MESSAGE_ID_SIG)
    return f"{number}-agent-{signature}"


def agent_reply_address(secret: bytes, support_address: str, number: int,
                        agent_email: str) -> str:
    """support+10001-agent-<sig>@x.de: the Reply-To of an agent's notices."""
    local, _, domain = support_address.partition("@")
    return f"{local}+{agent_reply_token(secret, number, agent_email)}@{domain}"


def ticket_of_agent_address(secret: bytes, address: str, agent_email: str) -> int | None:
    """The ticket when `address` is `agent_email`'s own reply address."""
    local = address.lower().partition("@")[0]
    match = _AGENT_TOKEN.match(local.split("+", 1)[1]) if "+" in local else None
    if not match:
        return None
    number = int(match.group(1))
    expected = agent_reply_token(secret, number, agent_email).rpartition("-")[2]
    return number if hmac.compare_digest(expected, match.group(2).lower()) else None


_THIRD_PARTY_TOKEN = re.compile(r"^tp-(\d{1,12})-([a-z2-7]+)$", re.IGNORECASE)
_THIRD_PARTY_UNIQUE = re.compile(r"^tp(\d{1,12})z[0-9a-f]+$", re.IGNORECASE)


def third_party_token(secret: bytes, request_id: int) -> str:
    """`tp-<id>-<sig>`: the token of the reply address a third person asked
    for a statement (or sent a forward) answers to. It names the
    third_party_request row; its own purpose ("tp") means no ticket token,
    agent token or body reference can be passed off as one."""
    return f"tp-{request_id}-{_sign(secret, 'tp', str(request_id), TOKEN_SIG)}"


def third_party_reply_address(secret: bytes, support_address: str, request_id: int) -> str:
    """support+tp-7-<sig>@x.de: the Reply-To of a mail to a third person."""
    local, _, domain = support_address.partition("@")
    return f"{local}+{third_party_token(secret, request_id)}@{domain}"


def looks_like_third_party_address(address: str) -> bool:
    """Shaped like a third-party reply address (signature not checked)."""
    local = address.lower().partition("@")[0]
    return "+" in local and bool(_THIRD_PARTY_TOKEN.match(local.split("+", 1)[1]))


def third_party_of_address(secret: bytes, address: str) -> int | None:
    """The request id of a third-party reply address; None for others and
    forgeries."""
    local = address.lower().partition("@")[0]
    match = _THIRD_PARTY_TOKEN.match(local.split("+", 1)[1]) if "+" in local else None
    if not match:
        return None
    request_id = int(match.group(1))
    expected = _sign(secret, "tp", str(request_id), TOKEN_SIG)
    return request_id if hmac.compare_digest(expected, match.group(2).lower()) else None


def third_party_message_id(secret: bytes, number: int, request_id: int, domain: str) -> str:
    """A Message-ID of ticket `number` whose signed unique part names the
    request: an answer that lost the plus-address still threads by its
    In-Reply-To, and a bounce of it still finds the ticket (it is one of
    our ordinary signed ids to every other check)."""
    unique = f"tp{request_id}z{secrets.token_hex(8)}"
    signature = _sign(secret, "mid", f"{number}.{unique}", MESSAGE_ID_SIG)
    return f"md.{number}.{unique}.{signature}@{domain}"


def third_party_of_message_id(secret: bytes, message_id: str) -> tuple[int, int] | None:
    """(ticket number, request id) of a third-party Message-ID of ours;
    None for other ids and forgeries (the signature covers both)."""
    number = ticket_of_message_id(secret, message_id)
    if number is None:
        return None
    match = _MESSAGE_ID.match(message_id.strip().strip("<>"))
    assert match is not None  # ticket_of_message_id matched it
    unique = _THIRD_PARTY_UNIQUE.match(match.group(2))
    return (number, int(unique.group(1))) if unique else None


def reply_address(secret: bytes, support_address: str, number: int) -> str:
    """support@x.de -> support+10001-abc…@x.de: replies come back threaded
    even when a client drops every header and rewrites the subject."""
    local, _, domain = support_address.partition("@")
    return f"{local}+{reply_token(secret, number)}@{domain}"


def ticket_of_address(secret: bytes, address: str) -> int | None:
    local = address.lower().partition("@")[0]
    if "+" not in local:
        return None
    return ticket_of_token(secret, local.split("+", 1)[1])


@functools.lru_cache(maxsize=4096)
def body_reference(secret: bytes, number: int) -> str:
    """The reference maildesk writes into the body of its mails (cached:
    the same for every mail of a ticket)."""
    return f"[ref:{number}.{_sign(secret, 'body', str(number), TOKEN_SIG)}]"


def tickets_of_body(secret: bytes, text: str) -> list[int]:
    """Verified references in a body (quoted ones included: a reply quotes
    our mail), in order of appearance, without duplicates."""
    found: list[int] = []
    for number_text, signature in _BODY_REFERENCE.findall(text):
        number = int(number_text)
        expected = _sign(secret, "body", str(number), TOKEN_SIG)
        if hmac.compare_digest(expected, signature.lower()) and number not in found:
            found.append(number)
    return found


def strip_prefixes(subject: str) -> str:
    """Remove any chain of Re:/AW:/WG:/Fwd:… and bracketed tags such as
    [EXTERNAL] from the front of a subject."""
    previous = None
    subject = subject.strip()
    while previous != subject:
        previous = subject
        subject = _PREFIX.sub("", subject, count=1).strip()
    return subject


_FORWARD = re.compile(r"^\s*(?:fwd?|wg|wtr|tr|vs|rv)\s*:", re.IGNORECASE)


def is_forward(subject: str) -> bool:
    """A forwarded mail ("WG:", "Fwd:"): its quoted part IS the content."""
    return bool(_FORWARD.match(subject))


def tag_pattern(tag_format: str) -> re.Pattern[str]:
    """The configured subject tag ("[#{number}]") as a regular expression."""
    before, _, after = tag_format.partition("{number}")
    return re.compile(
        re.escape(before.strip()) + r"\s*(\d{1,12})\s*" + re.escape(after.strip()), re.IGNORECASE
    )


def ticket_of_subject(subject: str, tag_format: str) -> int | None:
    """The number in our tag, wherever it stands behind any prefix chain
    ("AW: WG: [EXTERN] [#10001] …"). Searched on the whole subject so that a
    tag format that looks like a bracketed prefix is never stripped away."""
    match = tag_pattern(tag_format).search(subject)
    return int(match.group(1)) if match else None


def remove_tag(subject: str, tag_format: str) -> str:
    """The subject without prefixes and without our tag (for follow-ups)."""
    return " ".join(strip_prefixes(tag_pattern(tag_format).sub(" ", subject)).split())


def tagged_subject(subject: str, number: int, tag_format: str) -> str:
    """`[#10001] subject` for outgoing mail; never tags twice."""
    clean = remove_tag(subject, tag_format)
    return f"{tag_format.format(number=number)} {clean}".strip()
