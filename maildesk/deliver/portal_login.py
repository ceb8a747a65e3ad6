"""The mail of a portal login link (web/portal/auth.py): an outbox row
without a ticket, kind "portal_login".

The row's payload holds a random nonce, never the link: the link's token
is the HMAC of the nonce under the secret (`link_token`), and only its
sha256 is in `portal_login`. So neither table alone logs anyone in.

No ticket tag, no Reply-To, no threading ids; Auto-Submitted:
auto-generated like every automatic mail (the row itself has no
auto_submitted: a customer's own login requests, limited by the portal,
must not count against the automatic-mail limit of their ticket notices).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import bindparam, select

from maildesk.config import Settings
from maildesk.deliver.announcement import ticketless_fields
from maildesk.deliver.render import Renderer
from maildesk.models import Customer

KIND = "portal_login"
#: Where a login link leads; the token follows.
LOGIN_PATH = "/portal/login/"

_CUSTOMER = Customer.__table__
SQL = {"customer": select(_CUSTOMER.c.name, _CUSTOMER.c.email)
       .where(_CUSTOMER.c.email == bindparam("email"))}


def link_token(secret: bytes, nonce: str) -> str:
    """The login link's token for the row's nonce. Pure."""
    digest = hmac.new(secret, f"portal-login:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def login_url(base_url: str, secret: bytes, nonce: str) -> str:
    return f"{base_url.rstrip('/')}{LOGIN_PATH}{link_token(secret, nonce)}"


def fields(settings: Settings, secret: bytes, renderer: Renderer, row: dict[str, Any],
           connection: Any) -> tuple[dict[str, Any], list[str], None]:
    """compose()'s arguments for a login-link row, its recipient, and None
    for the ticket number. `connection` is in a transaction of the caller's."""
    payload = json.loads(row["payload"] or "{}")
    nonce = payload.get("nonce")
    if not nonce:
        raise ValueError(f"outbox {row['id']}: a portal_login row without its nonce")
    to = [a for a in row["to_addrs"].split(", ") if a]
    customer = connection.execute(SQL["customer"], {"email": to[0]}).first() if to else None
    context = {
        "customer": {"name": customer.name if customer else "", "email": to[0] if to else ""},
        "login_url": login_url(settings.web.base_url, secret, nonce),
        "minutes": payload.get("minutes", settings.portal.login_minutes),
        "brand": settings.notify.brand,
        "signature_name": settings.notify.signature(row["language"]),
        "reference_line": "",
    }
    rendered = renderer.render(row["kind"], row["language"], context)
    return ticketless_fields(settings, row, rendered, to, {}), to, None
