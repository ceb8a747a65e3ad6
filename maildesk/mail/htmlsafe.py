"""Make HTML from mail safe to show, and readable as plain text.

Mail HTML is written by strangers. Shown unfiltered in the helpdesk it could
run script in an agent's session, restyle the page to phish the agent, or
load remote images that tell the sender when and where the ticket was read.
:func:`sanitise_html` therefore keeps only ordinary formatting and never
anything that loads or runs something; :func:`html_to_text` gives a plain
rendering for mails that have no text/plain part (search, quoting, previews).
Both take whatever a mail contains and never raise: a broken HTML part must
not cost the whole ticket.
"""

from __future__ import annotations

import logging
import re

import nh3
from inscriptis import get_text

from maildesk.mail.text import encodable

__all__ = ["html_to_text", "sanitise_html"]

log = logging.getLogger(__name__)

_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "b", "bdi", "bdo", "big", "blockquote", "br",
        "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div",
        "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
        "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
        "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip

# Tags whose content is meaningless or dangerous as text and is dropped with
# the tag. Everything else not allowed is unwrapped (its text kept).
_DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet",
        "noscript", "noembed", "noframes", "template", "svg", "math", "title", "head",
        "form", "select", "textarea", "button", "audio", "video", "canvas", "xmp",
    }
)  # fmt: skip

_TABLE_ATTRIBUTES = {"align", "valign", "width", "height", "colspan", "rowspan", "scope"}
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "dir", "lang", "style"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"align", "width", "border", "cellpadding", "cellspacing", "summary"},
    "td": _TABLE_ATTRIBUTES,
    "th": _TABLE_ATTRIBUTES,
    "tr": {"align", "valign"},
    "col": {"span", "width", "align", "valign"},
    "colgroup": {"span", "width", "align", "valign"},
    "ol": {"start", "type"},
    "font": {"color", "face", "size"},
    "p": {"align"},
    "div": {"align"},
    "blockquote": {"cite"},
    "q": {"cite"},
}

# Only properties that cannot load anything (no url()) nor lift content out
# of its box (no position, no z-index) to overlay the helpdesk's own UI.
_ALLOWED_STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "font-family", "font-size", "font-style",
        "font-weight", "text-align", "text-decoration", "vertical-align", "white-space",
        "border", "border-collapse", "border-color", "border-style", "border-width",
        "padding", "padding-left", "padding-right", "padding-top", "padding-bottom",
        "margin", "margin-left", "margin-right", "margin-top", "margin-bottom",
        "width", "height", "line-height", "list-style-type",
    }
)  # fmt: skip

_LINK_SCHEMES = ("http:", "https:", "mailto:")
# Characters lxml (under inscriptis) refuses: NUL and C0 controls other than
# tab, newline and carriage return.
_XML_INCOMPATIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    """Keep a URL attribute only with a scheme we trust for that element.

    Images may only point at ``cid:`` (a part of the same mail): ``http(s):``
    would load a tracking pixel and ``data:`` can smuggle large or active
    (SVG) content. Links may only use http, https and mailto.
    """
    if attribute == "src":
        return value if value.strip().lower().startswith("cid:") else None
    if attribute == "href":
        return value if value.strip().lower().startswith(_LINK_SCHEMES) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(_ALLOWED_TAGS),
    clean_content_tags=set(_DROPPED_WITH_CONTENT),
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel="noopener noreferrer",
    url_schemes={"http", "https", "mailto", "cid"},
    filter_style_properties=set(_ALLOWED_STYLE_PROPERTIES),
    url_relative="deny",
)


def sanitise_html(html: str) -> str:
    """Return ``html`` with only harmless formatting left.

    Allowed are ordinary text formatting, lists, tables, links to http,
    https and mailto (with ``rel="noopener noreferrer"``) and images that
    reference a ``cid:`` part of the same mail. Scripts, styles sheets,
    frames, objects, forms, event handlers and remote or ``data:`` images
    are removed. Returns "" for empty input or when sanitising fails.
    """
    if not html or not isinstance(html, str):
        return ""
    try:
        return _CLEANER.clean(encodable(html).replace("\x00", ""))
    except Exception:
        log.warning("HTML sanitising failed", exc_info=True)
        return ""


def html_to_text(html: str) -> str:
    """Render ``html`` as readable plain text (paragraphs, lists, tables).

    Used when a mail has no text/plain part, so that full-text search,
    previews and quoting still work. Returns "" for empty input or when the
    HTML cannot be rendered at all.
    """
    if not html or not isinstance(html, str):
        return ""
    try:
        cleaned = _XML_INCOMPATIBLE.sub("", encodable(html))
        if not cleaned.strip():
            return ""
        return get_text(cleaned).strip()
    except Exception:
        log.warning("HTML to text conversion failed", exc_info=True)
        return ""
