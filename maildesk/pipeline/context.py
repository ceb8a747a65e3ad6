"""Settings -> the plain `Context` the pipeline steps read."""

from __future__ import annotations

from maildesk.config import Settings
from maildesk.pipeline.types import Context, Route


def make_context(
    settings: Settings, recipients: tuple[str, ...] = (), envelope_from: str | None = None
) -> Context:
    """Built per mail because the envelope differs; the rest is cheap."""
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
    )
