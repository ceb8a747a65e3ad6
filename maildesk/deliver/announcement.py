"""The mail of an outbox row without a ticket: an announcement to an
information recipient (actions/announce.py).

No ticket tag in the subject, no ticket reference, Reply-To or threading
ids: a fresh Message-ID of its own (an answer to it is a new mail to the
support address and opens a ticket, like any first mail). It carries the
one-click unsubscribe (RFC 8058: List-Unsubscribe with the signed https
link and List-Unsubscribe-Post), Auto-Submitted: auto-generated
(RFC 3834; the row itself has no auto_submitted, so the automatic-mail
limit neither holds it back nor counts it) and Precedence: bulk.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from maildesk.config import Settings
from maildesk.deliver.render import Renderer
from maildesk.models import Announcement, Customer, utcnow
from maildesk.tickets import address_links
from maildesk.tickets.notices import AUTO_GENERATED

_ANNOUNCEMENT = Announcement.__table__
_CUSTOMER = Customer.__table__
SQL = {
    "announcement": select(_ANNOUNCEMENT.c.subject, _ANNOUNCEMENT.c.text,
                           _ANNOUNCEMENT.c.created_at)
    .where(_ANNOUNCEMENT.c.id == bindparam("announcement_id")),
    "customer": select(_CUSTOMER.c.name, _CUSTOMER.c.email)
    .where(_CUSTOMER.c.email == bindparam("email")),
}


def headers(unsubscribe_url: str) -> dict[str, str]:
    """The list headers of an announcement (RFC 2369, RFC 8058). Pure."""
    return {"List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Precedence": "bulk"}


def fields(settings: Settings, secret: bytes, renderer: Renderer, row: dict[str, Any],
           connection: Any) -> tuple[dict[str, Any], list[str], None]:
    """compose()'s arguments for an announcement row, its recipients, and
    None for the ticket number (there is none). `connection` is in a
    transaction of the caller's."""
    if row["announcement_id"] is None:
        raise ValueError(f"outbox {row['id']}: no ticket and no announcement: nothing to send")
    found = connection.execute(SQL["announcement"],
                               {"announcement_id": row["announcement_id"]}).one()
    to = [a for a in row["to_addrs"].split(", ") if a]
    customer = connection.execute(SQL["customer"], {"email": to[0]}).first() if to else None
    url = address_links.unsubscribe_url(settings.web.base_url, secret, to[0])
    context = {
        "announcement": {"subject": found.subject, "text": found.text,
                         "created_at": found.created_at},
        "customer": {"name": customer.name if customer else "", "email": to[0]},
        "unsubscribe_url": url,
        "brand": settings.notify.brand,
        "signature_name": settings.notify.signature(row["language"]),
        "reference_line": "",
    }
    rendered = renderer.render(row["kind"], row["language"], context)
    return ticketless_fields(settings, row, rendered, to, headers(url)), to, None


def ticketless_fields(settings: Settings, row: dict[str, Any], rendered: Any, to: list[str],
                      extra_headers: dict[str, str]) -> dict[str, Any]:
    """compose()'s arguments for a mail of no ticket (an announcement, a
    portal login link): no thread, no reply address, auto-generated."""
    return dict(
        rendered=rendered, from_address=settings.mail.addresses[0],
        from_name=settings.notify.from_name, to=to, cc=[], reply_to=None,
        message_id=row["message_id"], in_reply_to=None, references=[], thread_topic="",
        thread_index=None, auto_submitted=AUTO_GENERATED, date=utcnow(),
        extra_headers=extra_headers, attachments=[])
