"""Errors of the API as RFC 9457 problem documents (application/problem+json).

Every error under /api/ — a handler's own, a validation error (with the
field), aiohttp's 404/405, an unexpected exception (500, logged, no
traceback to the client) — becomes {type, title, status, detail}. The
`type` is a stable URI per kind of error, so clients branch on it, not on
the English title.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
#: The base of every problem type URI.
TYPE_BASE = "https://maildesk.example/problems/"


class Problem(web.HTTPException):
    """Raised by a handler; answered as a problem document."""

    def __init__(self, status: int, kind: str, detail: str, **extra: Any) -> None:
        self.status_code = status
        super().__init__()
        self.kind = kind
        self.detail = detail
        self.extra = extra


def document(status: int, kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": TYPE_BASE + kind, "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, **extra}


def respond(status: int, kind: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> web.Response:
    body = json.dumps(document(status, kind, detail, **extra), ensure_ascii=False)
    return web.Response(status=status, text=body, content_type=CONTENT_TYPE,
                        headers=headers)


#: aiohttp's own errors, by status: the problem type they become.
_KINDS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
          405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type",
          429: "too-many-requests"}


@web.middleware
async def problem_middleware(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                             ) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except Problem as exc:
        extra_headers = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
        return respond(exc.status_code, exc.kind, exc.detail, headers=extra_headers or None,
                       **exc.extra)
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        kind = _KINDS.get(exc.status_code, "http-error")
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status_code)) else (
            HTTPStatus(exc.status_code).description)
        kept = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}  # Allow
        return respond(exc.status_code, kind, detail, headers=kept or None)
    except Exception:  # never a traceback to the client
        log.exception("api: %s %r failed (answered 500)", request.method, request.path)
        return respond(500, "internal-error", "the server could not answer; see its log")
