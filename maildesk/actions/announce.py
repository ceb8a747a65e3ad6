"""Product announcements to the information recipients, and unsubscribing
from them (issue #15; seeds 000/001: "Informationsempfänger").

`announce` writes one announcement row and one outbox row per recipient in
one transaction; the worker sends them like any notification, but without
a ticket (deliver/mailcontext.py: kind "announcement", List-Unsubscribe).

Who gets one (`recipients`, pure): every customer marked information
recipient, confirmed or not (the mark is an agent's deliberate choice; the
registration confirmation is about seeing tickets, not about mail), but
never an address in the unsubscribe table (whatever the mark says later),
a bouncing address, a noreply address or one of our own. With a language,
only the customers of that language (write the text once per language and
announce it twice); without, everyone, each in the frame of their own
language around the one text.

The automatic-mail limit (notify.auto_limit_count) is not applied: the
rows are written with auto_submitted NULL, so they neither are held by
nor count towards that limit; the worker still marks the mail
Auto-Submitted: auto-generated and Precedence: bulk.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from maildesk.actions.agent import ActionError, cli_actor
from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.mail.automatic import is_noreply_address
from maildesk.models import Announcement, Customer, Outbox, Unsubscribe, utcnow

KIND = "announcement"
LANGUAGES = ("de", "en")
#: The longest subject and text an announcement may have.
MAX_SUBJECT = 200
MAX_TEXT = 100_000


@dataclass(frozen=True)
class Candidate:
    email: str
    language: str
    bouncing: bool


@dataclass(frozen=True)
class Selection:
    """Who gets the announcement and who was left out, and why."""

    recipients: tuple[Candidate, ...]
    unsubscribed: tuple[str, ...] = ()
    bouncing: tuple[str, ...] = ()
    undeliverable: tuple[str, ...] = ()  # noreply or one of our own


@dataclass(frozen=True)
class AnnounceResult:
    announcement_id: int | None  # None for a dry run
    recipients: tuple[str, ...]
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)
    outbox_ids: tuple[int, ...] = ()


def recipients(candidates: Iterable[Candidate], unsubscribed: Iterable[str],
               ours: Iterable[str], language: str | None = None) -> Selection:
    """The information recipients an announcement goes to. Pure."""
    stop = {a.lower() for a in unsubscribed}
    own = {a.lower() for a in ours}
    chosen: list[Candidate] = []
    seen: set[str] = set()
    left: dict[str, list[str]] = {"unsubscribed": [], "bouncing": [], "undeliverable": []}
    for candidate in candidates:
        email = candidate.email.strip().lower()
        if not email or email in seen:
            continue
        seen.add(email)
        if language is not None and (candidate.language or "de") != language:
            continue
        local, _, domain = email.partition("@")
        if email in stop:
            left["unsubscribed"].append(email)
        elif email in own or f"{local.split('+', 1)[0]}@{domain}" in own \
                or is_noreply_address(email):
            left["undeliverable"].append(email)
        elif candidate.bouncing:
            left["bouncing"].append(email)
        else:
            chosen.append(Candidate(email, candidate.language or "de", False))
    return Selection(tuple(chosen), tuple(left["unsubscribed"]), tuple(left["bouncing"]),
                     tuple(left["undeliverable"]))


def check_input(subject: str, text: str, language: str | None) -> tuple[str, str]:
    """The subject (one line) and text; ActionError naming the field."""
    subject = " ".join(subject.split())
    if not subject:
        raise ActionError("--subject: the subject is empty", field="subject")
    if len(subject) > MAX_SUBJECT:
        raise ActionError(f"--subject: at most {MAX_SUBJECT} characters", field="subject")
    text = text.replace("\r\n", "\n").strip("\n")
    if not text.strip():
        raise ActionError("--text-file: the text is empty", field="text")
    if len(text) > MAX_TEXT:
        raise ActionError(f"--text-file: at most {MAX_TEXT} characters", field="text")
    if language is not None and language not in LANGUAGES:
        raise ActionError(f"--language: one of {', '.join(LANGUAGES)}", field="language")
    return subject, text


def announce(engine: Engine, settings: Settings, subject: str, text: str, *,
             language: str | None = None, actor: str | None = None,
             dry_run: bool = False) -> AnnounceResult:
    """Write the announcement and its outbox rows (one transaction); the
    caller hands `outbox_ids` to the broker. A dry run writes nothing."""
    subject, text = check_input(subject, text, language)
    if not settings.web.enabled:
        raise ActionError("announcements need [web] enabled: every one carries an "
                          "unsubscribe link (List-Unsubscribe) to a page of maildesk")
    if actor is not None:
        actor = actor.strip().lower()
        if actor not in {a.email.lower() for a in settings.agents}:
            known = ", ".join(a.email for a in settings.agents) or "none configured"
            raise ActionError(f"--agent: {actor} is not an agent (agents in the config: "
                              f"{known})", field="agent")
    with session_scope(engine) as session:
        connection = session.connection()
        customer = Customer.__table__
        candidates = [Candidate(r.email, r.language, bool(r.bouncing)) for r in connection.execute(
            select(customer.c.email, customer.c.language, customer.c.bouncing)
            .where(customer.c.info_recipient).order_by(customer.c.id))]
        stop = connection.execute(select(Unsubscribe.__table__.c.email)).scalars().all()
        chosen = recipients(candidates, stop, settings.mail.addresses, language)
        skipped = {"unsubscribed": chosen.unsubscribed, "bouncing": chosen.bouncing,
                   "undeliverable": chosen.undeliverable}
        emails = tuple(c.email for c in chosen.recipients)
        if dry_run:
            return AnnounceResult(None, emails, skipped)
        now = utcnow()
        table = Announcement.__table__
        announcement_id = connection.execute(insert(table).returning(table.c.id), {
            "subject": subject, "text": text, "actor": actor or cli_actor(),
            "created_at": now, "recipients": len(emails)}).scalar_one()
        ids: list[int] = []
        if chosen.recipients:
            outbox = Outbox.__table__
            ids = list(connection.execute(
                insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True), [
                    {"created_at": now, "kind": KIND, "ticket_id": None,
                     "announcement_id": announcement_id, "message_row_id": None,
                     "to_addrs": c.email, "cc_addrs": "",
                     "language": language or c.language, "auto_submitted": None,
                     "message_id": _message_id(announcement_id, settings.message_id_domain),
                     "payload": json.dumps({}), "state": "queued", "attempts": 0,
                     "next_attempt_at": now}
                    for c in chosen.recipients]).scalars().all())
    return AnnounceResult(announcement_id, emails, skipped, tuple(ids))


def _message_id(announcement_id: int, domain: str) -> str:
    """A fresh Message-ID per mail; not a ticket's (a reply to it opens a
    new ticket rather than threading onto one)."""
    return f"announcement.{announcement_id}.{secrets.token_hex(8)}@{domain}"


def unsubscribe(engine: Engine, email: str, via: str = "link") -> bool:
    """Record that `email` wants no more announcements; True when it is new.
    Idempotent (a second click, a retried one-click POST: nothing more).
    The customer's information-recipient mark is cleared too, so the
    directory shows it; setting it again does not bring announcements back
    (the unsubscribe row stays)."""
    address = email.strip().lower()
    table = Unsubscribe.__table__
    try:
        with session_scope(engine) as session:
            connection = session.connection()
            if connection.execute(select(table.c.email).where(table.c.email == address)).first():
                return False
            connection.execute(insert(table), {"email": address, "at": utcnow(), "via": via})
            customer = Customer.__table__
            connection.execute(update(customer).where(customer.c.email == address)
                               .values(info_recipient=False))
    except IntegrityError:  # the same address unsubscribed at the same moment
        return False
    return True


def is_unsubscribed(engine: Engine, email: str) -> bool:
    table = Unsubscribe.__table__
    with engine.connect() as connection:
        return connection.execute(select(table.c.email)
                                  .where(table.c.email == email.strip().lower())).first() \
            is not None


def language_of(engine: Engine, email: str) -> str | None:
    """The customer's language for the unsubscribe page, if one is known."""
    customer = Customer.__table__
    with engine.connect() as connection:
        return connection.execute(select(customer.c.language)
                                  .where(customer.c.email == email.strip().lower())).scalar()
