"""One API route, described once: the handler, its parameters and its
answer. aiohttp is given the handler; openapi.py writes the document from
the same description."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # below /api/v1, with {name} path parameters
    handler: Handler
    summary: str
    response: type[BaseModel] | None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    status: int = 200
    public: bool = False
    admin: bool = False
    errors: tuple[int, ...] = ()
    #: The media type of a file answer (instead of a JSON `response`).
    binary: str | None = None
    #: The body may also come as multipart/form-data with `files` parts.
    uploads: bool = False
