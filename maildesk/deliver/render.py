"""Notification texts from jinja2 templates, by kind and language.

A notification kind (``acknowledgement``, ``agent_reply``, …) is three files
under ``templates/mail/<lang>/``: ``<kind>.subject.j2`` (one line),
``<kind>.txt.j2`` (the text/plain part) and ``<kind>.html.j2`` (the
text/html part; autoescaped). Files whose name starts with ``_`` are shared
layouts, not kinds. Ops can replace any single file by putting one with the
same relative path into an override directory (``notify.templates_dir``);
it is searched first, file by file, and the rest stays built-in.

A kind is rendered in the first language of the chain requested →
``default_language`` → ``"de"`` that has all three of its files (in the
override directory or built in), so a mail never mixes languages. Labels
(status, request type, priority) and dates follow that language.

Pure: jinja2 and the standard library only; no database, no network.

Context keys (plain dicts and values; the worker builds them)
---------------------------------------------------------------
Every kind:
  ticket          {number: int, subject: str, status: str, status_label: str,
                  request_type: str, request_type_label: str, priority: str,
                  priority_label: str, tag: str ("[#10001]"),
                  follow_up_of: int | None}. The three ``*_label`` keys may be
                  left out: :meth:`Renderer.render` always sets them from the
                  language actually used (:func:`labels`).
  reference_line  str, the signed body reference ("[ref:10001.abcdefghijklm]");
                  the last line of every mail, text and HTML.
  signature_name  str, the sign-off in the mail's language (config ``notify.signature_name``).
  brand           str, product or company name (config ``notify.brand``).
  customer        {name: str, email: str}: the requester; in
                  ``agent_notice_reply`` the customer who wrote.
  agent           {name: str, email: str} or None: the agent who wrote
                  (``agent_reply``, ``solution``) or who receives the mail
                  (``agent_notice_new``, ``agent_notice_reply``,
                  ``command_result``); None for a group address.
Per kind (besides the above):
  agent_reply         text (the agent's message), thread: list of
                      {author: str, date: datetime, text: str}, earlier
                      messages, newest first (may be empty)
  solution            text (the solution); csat_url: str (optional; the
                      survey link under the signature when set)
  agent_notice_new    text (the customer's message)
  agent_notice_reply  text (the customer's reply)
  followup_created    old_ticket {number: int, subject: str} (``ticket`` is
                      the new follow-up ticket)
  command_result      commands: list of {line: str, ok: bool, message: str}
                      (all ok: applied; any not ok: nothing was applied)
  agent_notice_unverified  held_id: int, held_subject: str, held_reason: str
                      (a mail in the agent's name without proof was held)
  acknowledgement, reopened, closed: nothing more.
The renderer adds ``language`` (the language actually used, e.g. "de").
A key a template uses but the context lacks raises
:class:`jinja2.exceptions.UndefinedError` (StrictUndefined); nothing is
silently rendered empty.

Filters available in templates: ``datetime`` (a localized date and time in
the renderer's time zone; naive datetimes count as UTC), ``nl2br`` (plain
text to escaped HTML with <br>), ``status_label``, ``request_type_label``,
``priority_label``, ``mailbox`` (``{{ name | mailbox(email) }}``: "Name
<email>", or the plain address when there is no display name).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from maildesk.errors import PermanentError
from maildesk.tickets.labels import FALLBACK_LANGUAGE, labels, labels_for, language_variants

__all__ = ["BUILTIN_DIR", "PARTS", "Rendered", "Renderer", "UnknownTemplate", "labels",
           "shipped_templates"]


def shipped_templates() -> Path:
    """The directory of the templates maildesk ships (``mail/``, ``web/``).

    The one place that knows where they are, for the mail renderer, the web
    pages and ``maildesk check``. Installed from a wheel they are package
    data, ``maildesk/templates/`` (setup.py copies the repository's top-level
    ``templates/`` there), found through importlib.resources wherever the
    package lies. In a source checkout (``pip install -e``, the tests) they
    are the checkout's own ``templates/`` beside the package, edited in
    place. When neither exists the package-data path is returned, so the
    error that follows names where the templates should be.
    """
    package = Path(str(resources.files("maildesk")))
    installed = package / "templates"
    checkout = package.parent / "templates"
    in_checkout = (package.parent / "pyproject.toml").is_file() and checkout.is_dir()
    return checkout if in_checkout and not installed.is_dir() else installed


#: The mail templates shipped with maildesk.
BUILTIN_DIR = shipped_templates() / "mail"
#: The three files of a kind, by part.
PARTS = ("subject", "txt", "html")
#: How long the language found for a (kind, language) is used unchecked.
LANGUAGE_CHECK_SECONDS = 5.0

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


class UnknownTemplate(PermanentError, ValueError):
    """No language of the fallback chain has all files of a kind."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    """Renders notification kinds; environments are cached per language."""

    def __init__(
        self,
        override_dir: Path | None = None,
        default_language: str = FALLBACK_LANGUAGE,
        *,
        timezone: str = "Europe/Berlin",
        builtin_dir: Path = BUILTIN_DIR,
    ) -> None:
        """``override_dir`` holds ``<lang>/<kind>.<part>.j2`` files (a
        directory with a ``mail/`` subdirectory is accepted too, so
        ``notify.templates_dir`` can be passed as it is). ``timezone`` is
        the IANA zone in which dates are shown."""
        if override_dir is not None:
            override_dir = Path(override_dir)
            if not override_dir.is_dir():
                raise ValueError(f"template override directory {override_dir} does not exist")
            if (override_dir / "mail").is_dir():
                override_dir = override_dir / "mail"
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r} for mail dates") from None
        self._override = override_dir
        self._builtin = Path(builtin_dir)
        self._default = default_language
        self._envs: dict[str, Environment] = {}
        self._languages: dict[tuple[str, str], tuple[str, float]] = {}

    # -- public ---------------------------------------------------------------

    def render(self, kind: str, language: str, context: dict[str, Any]) -> Rendered:
        """Render the subject, text and HTML of ``kind``.

        Raises :class:`UnknownTemplate` (a ValueError) when no language of
        the chain has the kind, and jinja2's UndefinedError when the context
        lacks a key the template uses.
        """
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise UnknownTemplate(f"invalid notification kind {kind!r}")
        chosen = self._language_for(kind, language)
        env = self._env(chosen)
        values = dict(context)
        if isinstance(values.get("ticket"), dict):
            values["ticket"] = self._labelled(values["ticket"], chosen)
        values["language"] = chosen
        parts = {}
        for part in PARTS:
            name = f"{kind}.{part}.j2"
            try:
                parts[part] = env.get_template(name).render(values)
            except Exception as exc:
                exc.add_note(f"while rendering {chosen}/{name}")
                raise
        subject = " ".join(parts["subject"].split())
        return Rendered(
            subject=subject,
            text=parts["txt"].strip("\n") + "\n",
            html=parts["html"].strip() + "\n",
        )

    def kinds(self) -> list[str]:
        """Every kind that is complete (all three files) in some language."""
        found: set[str] = set()
        for base in self._dirs():
            for lang_dir in sorted(p for p in base.iterdir() if p.is_dir()):
                language = lang_dir.name
                for path in lang_dir.glob("*.txt.j2"):
                    kind = path.name[: -len(".txt.j2")]
                    if _KIND.match(kind) and self._has_kind(language, kind):
                        found.add(kind)
        return sorted(found)

    def language_for(self, kind: str, language: str) -> str:
        """The language ``kind`` would be sent in when ``language`` is asked
        for (the fallback chain, looked up now, not remembered): ``maildesk
        check`` calls a kind that falls back to another language missing.
        Raises :class:`UnknownTemplate` when no language has it."""
        return self._find_language(kind, language)

    def missing_parts(self, kind: str, language: str) -> list[str]:
        """The files of ``kind`` that ``language`` lacks (in the override
        directory and built in), e.g. ``["closed.html.j2"]``."""
        return [f"{kind}.{part}.j2" for part in PARTS
                if not any((base / language / f"{kind}.{part}.j2").is_file()
                           for base in self._dirs())]

    def searched(self) -> list[Path]:
        """The template directories, override first, that exist."""
        return self._dirs()

    # -- internals ------------------------------------------------------------

    def _dirs(self) -> list[Path]:
        dirs = [self._override] if self._override is not None else []
        return [d for d in [*dirs, self._builtin] if d.is_dir()]

    def _chain(self, language: str) -> list[str]:
        chain: list[str] = []
        for candidate in (
            *language_variants(language),
            *language_variants(self._default),
            FALLBACK_LANGUAGE,
        ):
            if candidate not in chain:
                chain.append(candidate)
        return chain

    def _has_kind(self, language: str, kind: str) -> bool:
        return all(
            any((base / language / f"{kind}.{part}.j2").is_file() for base in self._dirs())
            for part in PARTS
        )

    def _language_for(self, kind: str, language: str) -> str:
        """The language a kind is rendered in. Remembered for
        :data:`LANGUAGE_CHECK_SECONDS` (it takes a stat per file and
        language), so a file added to the override directory counts within
        seconds; a changed file counts at once (jinja2 checks each
        template's mtime)."""
        key = (kind, language)
        now = time.monotonic()
        known = self._languages.get(key)
        if known is not None and known[1] > now:
            return known[0]
        chosen = self._find_language(kind, language)
        self._languages[key] = (chosen, now + LANGUAGE_CHECK_SECONDS)
        return chosen

    def _find_language(self, kind: str, language: str) -> str:
        chain = self._chain(language)
        for candidate in chain:
            if self._has_kind(candidate, kind):
                return candidate
        searched = ", ".join(str(base / lang) for lang in chain for base in self._dirs())
        raise UnknownTemplate(
            f"no templates for notification kind {kind!r} "
            f"(need {kind}.subject.j2, {kind}.txt.j2 and {kind}.html.j2; searched {searched})"
        )

    def _labelled(self, ticket: dict[str, Any], language: str) -> dict[str, Any]:
        table = labels_for(language)
        ticket = dict(ticket)
        for field in ("status", "request_type", "priority"):
            value = ticket.get(field)
            label = table[field].get(value) if isinstance(value, str) else None
            if label is not None:
                ticket[f"{field}_label"] = label
            elif f"{field}_label" not in ticket and value is not None:
                ticket[f"{field}_label"] = str(value)
        return ticket

    def _env(self, language: str) -> Environment:
        env = self._envs.get(language)
        if env is not None:
            return env
        search = [str(base / language) for base in self._dirs()]
        env = Environment(
            loader=FileSystemLoader(search, encoding="utf-8"),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), disabled_extensions=(), default=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        table = labels_for(language)
        env.filters["datetime"] = lambda value: _format_datetime(value, language, self._zone)
        env.filters["nl2br"] = _nl2br
        env.filters["status_label"] = lambda v: table["status"].get(v, v)
        env.filters["request_type_label"] = lambda v: table["request_type"].get(v, v)
        env.filters["priority_label"] = lambda v: table["priority"].get(v, v)
        env.filters["mailbox"] = mailbox
        self._envs[language] = env
        return env


def _format_datetime(value: datetime, language: str, zone: ZoneInfo) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    if language.split("-", 1)[0] == "de":
        return local.strftime("%d.%m.%Y, %H:%M Uhr")
    month = _MONTHS_EN[local.month - 1]
    return f"{local.day} {month} {local.year}, {local:%H:%M} ({local.tzname()})"


def mailbox(name: Any, email: str) -> str:
    """A sender as an agent reads it: "Name <email>", or just the address
    when the mail had no display name (not "<x@y>", which looks broken)."""
    shown = str(name or "").strip()
    return f"{shown} <{email}>" if shown and shown != email else str(email)


def _nl2br(value: Any) -> Markup:
    """Plain text as HTML: escaped, line breaks kept."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return Markup("<br>\n").join(escape(line) for line in text.split("\n"))
