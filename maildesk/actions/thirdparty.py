"""Asking a third person for a statement and forwarding a ticket to
someone for information (seed 003: "andere Personen um eine Stellungnahme
bitten", "zur Info weiterleiten, z.B. um Lob mitzuteilen").

One action for both, shared by the CLI and the HTTP API: in one
transaction the third_party_request row, the history event and the outbox
row of the mail (the ticket's subject, the customer's messages and the
agent's text; Reply-To the request's own signed address). Their answer
comes back as an internal note (process/pipeline/status.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk.actions.agent import ActionError, Dispatch, _agent, _ticket
from maildesk.actions.intake import ADDRESS_PATTERN
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.mail import tokens
from maildesk.mail.automatic import is_noreply_address
from maildesk.models import Event, utcnow
from maildesk.secret import load_secret
from maildesk.store import third_party as requests
from maildesk.store import tickets as store
from maildesk.tickets import outbox
from maildesk.tickets import writes as tickets

KINDS = ("ask", "forward")
LANGUAGES = ("de", "en")
_ADDRESS = re.compile(ADDRESS_PATTERN.removesuffix("$") + r"\Z")
#: What the history says (the request's text follows in its own row).
_HISTORY = {"ask": "asked {to} for a statement", "forward": "forwarded the ticket to {to}"}


@dataclass(frozen=True)
class ThirdPartyResult:
    id: int
    number: int
    kind: str
    to: str
    created_at: datetime
    reply_to: str
    outbox_ids: tuple[int, ...] = ()


def check_request(settings: Settings, kind: str, to: str, text: str,
                  language: str | None) -> str:
    """The address, lower-cased; ActionError naming the field otherwise.
    One of our own addresses or a noreply address would never answer (and
    ours would loop)."""
    if kind not in KINDS:
        raise ActionError(f"kind: one of {', '.join(KINDS)}", field="kind")
    address = to.strip().lower()
    if not _ADDRESS.match(address):
        raise ActionError(f"to: {to[:80]!r} is not an e-mail address", field="to")
    local, _, domain = address.partition("@")
    if f"{local.split('+', 1)[0]}@{domain}" in {a.lower() for a in settings.mail.addresses}:
        raise ActionError(f"to: {address} is one of maildesk's own addresses", field="to")
    if is_noreply_address(address):
        raise ActionError(f"to: {address} is a noreply address; nobody would answer",
                          field="to")
    if kind == "ask" and not text.strip():
        raise ActionError("text: say what you ask for (the question is empty)", field="text")
    if language is not None and language not in LANGUAGES:
        raise ActionError(f"language: one of {', '.join(LANGUAGES)}", field="language")
    return address


def send(engine: Engine, settings: Settings, number: int, kind: str, to: str, text: str = "",
         *, actor: str, agent_email: str | None = None, language: str | None = None,
         dispatch: Dispatch) -> ThirdPartyResult:
    """Ask (`kind` "ask") or forward ("forward") ticket `number` to `to`.
    `agent_email`, when given, must be an agent: the one told of the answer
    (else the ticket's assignee or group); `actor` is who the history names."""
    address = check_request(settings, kind, to, text, language)
    secret = load_secret(settings)
    with session_scope(engine) as session:
        ticket = _ticket(session, number)
        if agent_email is not None:
            actor = _agent(session, settings, agent_email).email
        result = write_request(session, settings, secret, ticket, kind, address, text.strip(),
                               actor, language)
    dispatch(list(result.outbox_ids))
    return result


def write_request(session: Session, settings: Settings, secret: bytes, ticket: dict,
                  kind: str, to: str, text: str, actor: str,
                  language: str | None) -> ThirdPartyResult:
    """The request inside the caller's transaction: row, event, outbox row."""
    created = utcnow()
    request_id = requests.add_request(session, ticket["id"], kind, to, text, actor, created)
    line = _HISTORY[kind].format(to=to) + (f": {text[:200]}" if text else "")
    store.insert_many(session, Event, [tickets.event(ticket["id"], actor, f"third_party_{kind}",
                                                     line)])
    store.update_ticket(session, ticket["id"])
    ids = outbox.notify_third_party(
        session, settings, secret, ticket["number"], f"third_party_{kind}",
        request_id=request_id, third_party=to, language=language,
        payload={"request_text": text, "request_kind": kind, "asked_by": actor})
    if not ids:  # check_request refuses what plan() would drop: a bug if reached
        raise ActionError(f"to: no mail can go to {to}", field="to")
    return ThirdPartyResult(
        id=request_id, number=ticket["number"], kind=kind, to=to, created_at=created,
        reply_to=tokens.third_party_reply_address(secret, settings.mail.addresses[0],
                                                  request_id),
        outbox_ids=tuple(ids))
