"""The "no more mails of this ticket" links a mail carries for each of its
recipients who is a CC or follower (web/participant_removal.py), signed
per participant row (tickets/address_links.py) and issued at the outbox
row's creation, so every retry carries the same links. Agent notices
carry none (agents are not participants)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from maildesk.config import Settings
from maildesk.models import Participant
from maildesk.tickets import address_links

_PART = Participant.__table__
_PARTICIPANTS = select(_PART.c.id, _PART.c.email).where(
    _PART.c.ticket_id == bindparam("ticket_id"))


def stop_links(settings: Settings, secret: bytes, connection: Any, row: dict[str, Any],
               ticket: dict[str, Any]) -> list[dict[str, str]]:
    """[{email, url}] for the row's To and Cc who are on the ticket as CC or
    follower; [] when the web pages are off."""
    if not settings.web.enabled or row["kind"].startswith(("agent_notice", "command_result")):
        return []
    recipients = [a.lower() for a in f"{row['to_addrs']}, {row['cc_addrs']}".split(", ") if a]
    if not recipients:
        return []
    found = {r.email.lower(): r.id for r in connection.execute(
        _PARTICIPANTS, {"ticket_id": ticket["id"]})}
    return [{"email": email,
             "url": address_links.removal_url(settings.web.base_url, secret, found[email],
                                              ticket["number"], email, row["created_at"])}
            for email in recipients if email in found]
