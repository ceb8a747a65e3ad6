"""The HTTP JSON API under /api/v1/ (issue #14): the one interface every
later front end (the customers' portal, an agent UI, scripts) uses.

`problems` writes every error as an RFC 9457 problem document, `auth`
checks the bearer token and slows down guessing, `schemas` holds the
pydantic models the handlers validate with and the OpenAPI document is
written from, `tickets` the ticket routes, `openapi` the document itself.
"""

from __future__ import annotations

from aiohttp import web

from maildesk.web.api import customers, files, held, openapi, outbox, tickets
from maildesk.web.api import reports as report_routes
from maildesk.web.api.auth import API, ApiState, auth_middleware
from maildesk.web.api.problems import problem_middleware

PREFIX = "/api/v1"
#: Every route of the API (the OpenAPI document lists exactly these).
ROUTES = (*tickets.ROUTES, *files.ROUTES, *customers.ROUTES, *held.ROUTES, *outbox.ROUTES,
          *report_routes.ROUTES, *openapi.ROUTES)


def add_api_routes(app: web.Application, state: ApiState) -> None:
    """Register the API's routes and middlewares on the application."""
    app[API] = state
    app.middlewares.append(problem_middleware)
    app.middlewares.append(auth_middleware)
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, route.handler)
