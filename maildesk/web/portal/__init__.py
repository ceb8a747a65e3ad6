"""The customers' portal under /portal/: passwordless login, sessions and
"My requests" (issue 16, first slice)."""

from maildesk.web.portal.auth import add_portal_pages

__all__ = ["add_portal_pages"]
