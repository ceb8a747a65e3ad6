"""An article's Markdown as safe HTML, its title and its plain text.

Articles are written by ops, but a file in a shared directory is not
trusted markup: raw HTML is off in the parser (it shows as text), and the
HTML the parser makes is sanitised again by nh3 with a short allow-list
(belt and braces: a parser bug or a rule enabled later cannot bring a
script, an event handler, a style attribute or a javascript: link).

Images may only be files next to the articles: a relative `src` is
resolved against the article's folder and becomes a URL of the portal's
file route (FILES_PREFIX); anything else (absolute URLs, paths leaving the
directory, hidden files, SVG and other types) is dropped, its alt text
kept. Relative links to other articles may name the file (`other.md`):
the ".md" is taken off, and the page URLs mirror the folders, so the
browser resolves them to the article's page. Pure: no I/O.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

#: Where the portal serves the directory's images (web/portal/help_page.py).
FILES_PREFIX = "/portal/help/files/"
#: Raster images only: an SVG can carry script.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})

ALLOWED_TAGS = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "em", "strong", "s", "del",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "img",
    "table", "thead", "tbody", "tr", "th", "td",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer"

_SPACES = re.compile(r"\s+")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.enable(["table", "strikethrough"], ignoreInvalid=True)
    return md


_MD = _parser()


@dataclass(frozen=True)
class Rendered:
    """`title`: the first level-1 heading's text (None without one);
    `html`: safe, without that heading when the article starts with it;
    `headings`: the other headings' text; `text`: the rest as plain text."""

    title: str | None
    html: str
    headings: tuple[str, ...]
    text: str


def render(markdown: str, folder: str = "") -> Rendered:
    """The article; `folder`: its folder relative to the articles directory
    ("" at the top, "drucker/laser"), for its relative images."""
    tokens = _MD.parse(markdown)
    title_at = next((i for i, t in enumerate(tokens)
                     if t.type == "heading_open" and t.tag == "h1"), None)
    title = _inline_text(tokens[title_at + 1]) if title_at is not None else None
    if title_at == 0:
        tokens = tokens[3:]  # the page shows the title as its own heading
    headings: list[str] = []
    body: list[str] = []
    for index, token in enumerate(tokens):
        if token.type == "inline":
            _rewrite(token, folder)
            text = _inline_text(token)
            if index > 0 and tokens[index - 1].type == "heading_open":
                if index - 1 != title_at:
                    headings.append(text)
            else:
                body.append(text)
        elif token.type in ("fence", "code_block"):
            body.append(token.content)
    html = _MD.renderer.render(tokens, _MD.options, {})
    return Rendered(title or None, sanitise(html), tuple(h for h in headings if h),
                    _SPACES.sub(" ", " ".join(body)).strip())


def sanitise(html: str) -> str:
    """Only the allow-listed tags and attributes, links of safe schemes
    (with rel=noopener noreferrer), images only from FILES_PREFIX."""
    return nh3.clean(html, tags=set(ALLOWED_TAGS), clean_content_tags={"script", "style"},
                     attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
                     attribute_filter=_attribute_filter, strip_comments=True,
                     link_rel=LINK_REL, url_schemes=set(URL_SCHEMES))


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    if element == "img" and attribute == "src" and not value.startswith(FILES_PREFIX):
        return None
    return value


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_inline_text(child))
    return _SPACES.sub(" ", "".join(parts)).strip()


def _rewrite(token: Token, folder: str) -> None:
    """Images to the file route (or dropped), ".md" off relative links."""
    children: list[Token] = []
    for child in token.children or ():
        if child.type == "image":
            src = image_path(str(child.attrGet("src") or ""), folder)
            if src is None:
                alt = Token("text", "", 0)
                alt.content = _inline_text(child)
                children.append(alt)
                continue
            child.attrSet("src", FILES_PREFIX + quote(src))
        elif child.type == "link_open":
            child.attrSet("href", _article_link(str(child.attrGet("href") or "")))
        children.append(child)
    token.children = children


def image_path(src: str, folder: str) -> str | None:
    """The image's path relative to the articles directory, None when it
    is no relative raster image inside it."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc or parts.query or src.startswith(("/", "\\")):
        return None
    name = unquote(parts.path)
    if not name or "\\" in name or "\x00" in name:
        return None
    resolved = posixpath.normpath(posixpath.join(folder, name))
    segments = resolved.split("/")
    if resolved.startswith("/") or any(s in ("", ".", "..") or s.startswith(".")
                                       for s in segments):
        return None
    if posixpath.splitext(resolved)[1].lower() not in IMAGE_SUFFIXES:
        return None
    return resolved


def _article_link(href: str) -> str:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("/", "#")):
        return href
    path, sep, fragment = href.partition("#")
    if path.lower().endswith(".md"):
        path = path[:-3]
    return path + sep + fragment
