"""The OpenAPI 3.1 document at /api/v1/openapi.json, written from the routes'
own descriptions (routes.Route) and pydantic models, so every route the
server answers is in it and every answer matches its schema."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from maildesk import __version__
from maildesk.web.api import schemas
from maildesk.web.api.routes import Route

REF = "#/components/schemas/{model}"
#: Every path parameter of the API is a number (what the handlers accept).
PATH_PARAMETERS = {
    "number": {"type": "integer", "minimum": 0, "maximum": 9_999_999_999},
    "held_id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    "outbox_id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    "attachment_id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    "message_id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    "customer_id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    "organisation_id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A $ref to `model`, its schema (and those it uses) in `components`."""
    schema = model.model_json_schema(ref_template=REF)
    for name, nested in [*schema.pop("$defs", {}).items(), (model.__name__, schema)]:
        if components.setdefault(name, nested) != nested:
            # two models of one name: the document would describe one of them twice
            raise TypeError(f"two API models are called {name}: rename one")
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(route: Route) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
              for name in re.findall(r"{(\w+)}", route.path)]
    if route.query is not None:
        schema = route.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            entry = {"name": name, "in": "query", "required": name in required,
                     "schema": {k: v for k, v in prop.items() if k != "description"}}
            if "description" in prop:
                entry["description"] = prop["description"]
            params.append(entry)
    return params


def _form_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields as form parts, plus any number of `files`."""
    schema = model.model_json_schema(ref_template=REF)
    properties = dict(schema.get("properties", {}))
    properties["files"] = {"type": "array", "items": {"type": "string", "format": "binary"},
                           "description": "files to attach, one part each"}
    form: dict[str, Any] = {"type": "object", "properties": properties,
                            "additionalProperties": False}
    if schema.get("required"):
        form["required"] = schema["required"]
    return {"schema": form, "encoding": {"files": {"contentType": "application/octet-stream"}}}


def build(routes: tuple[Route, ...], prefix: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    problem = _schema(schemas.ProblemDocument, components)
    paths: dict[str, Any] = {}
    for route in routes:
        responses: dict[str, Any] = {}
        if route.binary is not None:
            responses[str(route.status)] = {"description": "the file", "content": {
                route.binary: {"schema": {"type": "string", "format": "binary"}}}}
        elif route.response is not None:
            responses[str(route.status)] = {"description": "OK", "content": {
                "application/json": {"schema": _schema(route.response, components)}}}
        else:
            responses[str(route.status)] = {"description": "done, no content"}
        errors = (*route.errors, 413) if route.body is not None else route.errors
        for status in errors:
            responses[str(status)] = {"description": "problem",
                                      "content": {"application/problem+json": {
                                          "schema": problem}}}
        operation: dict[str, Any] = {
            "summary": route.summary, "operationId": route.handler.__name__,
            "parameters": _parameters(route), "responses": responses}
        if route.body is not None:
            content = {"application/json": {"schema": _schema(route.body, components)}}
            if route.uploads:
                content["multipart/form-data"] = _form_schema(route.body)
            operation["requestBody"] = {"required": True, "content": content}
        if route.public:
            operation["security"] = []
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "maildesk API", "version": __version__},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }


@cache
def _document_text() -> str:
    from maildesk.web.api import PREFIX
    from maildesk.web.api import ROUTES as ALL

    return json.dumps(build(ALL, PREFIX))


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(text=_document_text(), content_type="application/json")


ROUTES = (
    Route("GET", "/openapi.json", get_openapi, "This document", None, public=True),
)
