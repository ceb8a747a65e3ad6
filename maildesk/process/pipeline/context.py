"""Settings -> the plain `Context` the pipeline steps read."""

from __future__ import annotations

from datetime import datetime, timedelta

from maildesk.config import Settings
from maildesk.types import Context, Route


def make_context(
    settings: Settings,
    secret: bytes = b"",
    *,
    recipients: tuple[str, ...] = (),
    envelope_from: str | None = None,
    now: datetime | None = None,
    recovered_by: str | None = None,
) -> Context:
    """Built per mail because the envelope and the time differ; cheap."""
    routes = {
        r.address: Route(
            request_type=r.request_type, category=r.category, subcategory=r.subcategory,
            group=r.group, priority=r.priority,
        )
        for r in settings.routes
    }
    return Context(
        our_addresses=frozenset(settings.mail.addresses),
        routes=routes,
        free_mail_domains=frozenset(settings.mail.free_mail_domains),
        recipients=tuple(r.lower() for r in recipients),
        envelope_from=envelope_from,
        secret=secret,
        subject_tag=settings.mail.subject_tag,
        agents=frozenset(a.email for a in settings.agents),
        blocked_senders=frozenset(settings.loops.blocked_senders),
        rate_limit_count=settings.loops.rate_limit_count,
        rate_limit_window=timedelta(minutes=settings.loops.rate_limit_minutes),
        now=now,
        trusted_authserv_ids=frozenset(settings.security.trusted_authserv_ids),
        recovered_by=recovered_by,
    )
