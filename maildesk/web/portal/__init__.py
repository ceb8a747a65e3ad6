"""The customers' portal under /portal/ (issue 16): passwordless login and
sessions (auth.py), the pages (one module each, listed in routes.py)."""

from maildesk.web.portal.routes import add_portal_pages

__all__ = ["add_portal_pages"]
