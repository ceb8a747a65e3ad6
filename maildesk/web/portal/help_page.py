"""The portal's help articles (Wissensdatenbank, issue 16).

    GET /portal/help                 the articles by category, a search box (?q=)
    GET /portal/help/<slug>          one article
    GET /portal/help/suggest?q=      JSON: articles for a new request's subject
    GET /portal/help/files/<path>    an image of an article (raster types only)

The articles are files (articles/library.py); the slug and the image path
are keys of the loaded index, never paths on the disk. With [portal]
articles_public every visitor may read them (a logged-in customer sees
the portal's navigation with them); without it a visitor without a live
session is sent to the login (the JSON answers 401) and nothing of any
article is read out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiohttp import web
from sqlmodel import Session

from maildesk.articles import library as articles
from maildesk.articles import render as article_render
from maildesk.articles.search import MAX_QUERY
from maildesk.mail import filetypes
from maildesk.models import utcnow
from maildesk.store import portal as store
from maildesk.web import files
from maildesk.web.pages import PAGES, _browser_language
from maildesk.web.portal import auth

log = logging.getLogger(__name__)

HELP = articles.HELP_PATH
SUGGEST = HELP + "/suggest"
FILES = article_render.FILES_PREFIX
#: Raster images an article may show (the bytes must be one of them, too).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Visitor:
    """Who asks: `customer` None for a visitor without a live session;
    `stale`: a session cookie came that leads to no session (drop it)."""

    customer: store.PortalCustomer | None
    stale: bool = False


def _customer(session: Session, token_hash: str, now: datetime) -> store.PortalCustomer | None:
    customer_id = auth.live_customer(session, token_hash, now)
    return store.customer_by_id(session, customer_id) if customer_id is not None else None


async def _visitor(request: web.Request) -> Visitor:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return Visitor(None, stale=auth.COOKIE in request.cookies)
    customer = await auth.in_transaction(request, _customer, token_hash, utcnow())
    return Visitor(customer, stale=customer is None)


def _may_read(request: web.Request, visitor: Visitor) -> bool:
    return request.app[PAGES].settings.portal.articles_public or visitor.customer is not None


def _to_login(visitor: Visitor) -> web.Response:
    response = auth.redirect(auth.LOGIN)
    if visitor.stale:
        auth.drop_cookie(response)
    return response


def _language(request: web.Request, visitor: Visitor) -> str | None:
    customer = visitor.customer
    return customer.language if customer and customer.language else _browser_language(request)


def _library(request: web.Request) -> articles.Library:
    return articles.for_settings(request.app[PAGES].settings)


def _page(request: web.Request, visitor: Visitor, name: str, status: int = 200,
          **context: object) -> web.Response:
    return auth.render(request, name, _language(request, visitor), status,
                       customer=visitor.customer, nav="help" if visitor.customer else "",
                       help_path=HELP, **context)


# -- the pages --------------------------------------------------------------------------------


async def help_list(request: web.Request) -> web.StreamResponse:
    visitor = await _visitor(request)
    if not _may_read(request, visitor):
        return _to_login(visitor)
    query = " ".join(request.query.get("q", "").split())[:MAX_QUERY]
    shelf = await request.app[PAGES].run(_library(request).shelf)
    results = shelf.search(query) if query else []
    return _page(request, visitor, "portal_help", present=shelf.present,
                 categories=shelf.categories, count=len(shelf.articles), query=query,
                 results=results)


async def article_page(request: web.Request) -> web.StreamResponse:
    visitor = await _visitor(request)
    if not _may_read(request, visitor):
        return _to_login(visitor)
    shelf = await request.app[PAGES].run(_library(request).shelf)
    article = shelf.articles.get(request.match_info["slug"])
    if article is None:
        return _page(request, visitor, "portal_article", 404, article=None, anchor="")
    anchor = next((c.anchor for c in shelf.categories if c.name == article.category), "")
    return _page(request, visitor, "portal_article", article=article, anchor=anchor)


async def suggest(request: web.Request) -> web.StreamResponse:
    """For the new-request form: `{"articles": [{title, url, category,
    snippet}]}`, at most articles.SUGGESTIONS (category "" = General)."""
    visitor = await _visitor(request)
    if not _may_read(request, visitor):
        return web.json_response({"error": "login required"}, status=401)
    query = " ".join(request.query.get("q", "").split())[:MAX_QUERY]
    found = await request.app[PAGES].run(_library(request).suggest, query)
    return web.json_response({"articles": [
        {"title": f.article.title, "url": f.article.url, "category": f.article.category,
         "snippet": f.snippet} for f in found]})


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


async def image(request: web.Request) -> web.StreamResponse:
    visitor = await _visitor(request)
    if not _may_read(request, visitor):
        return _to_login(visitor)
    pages = request.app[PAGES]
    name = request.match_info["path"]
    path = await pages.run(_library(request).image, name)
    data = await pages.run(_read, path) if path is not None else None
    if path is None or data is None:
        raise web.HTTPNotFound(text="404: not found\n")
    serving = filetypes.serving(None, path.name, data)
    if serving.content_type not in IMAGE_TYPES or not serving.inline:
        log.warning("articles: %s is no image of an allowed type (%s): not served",
                    name, serving.content_type)
        raise web.HTTPNotFound(text="404: not found\n")
    return files.response(files.Download(path.name, serving.content_type, data, 0))


async def _to_list(request: web.Request) -> web.StreamResponse:
    return auth.redirect(HELP)


def add_routes(app: web.Application) -> None:
    """The help pages (the fixed paths before the article's catch-all)."""
    app.router.add_get(HELP, help_list)
    app.router.add_get(HELP + "/", _to_list)
    app.router.add_get(SUGGEST, suggest)
    app.router.add_get(FILES + "{path:.+}", image)
    app.router.add_get(HELP + "/{slug:.+}", article_page)
