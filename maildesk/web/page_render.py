"""The customers' pages from jinja2 templates, by language.

``templates/web/<lang>/<page>.html.j2`` hold each language's words; the
shared frame (markup and the one inline stylesheet: no external assets, no
script) is ``templates/web/_base.html.j2``. Ops override any file from
``<notify.templates_dir>/web/`` like the mail templates. A page is rendered
in the first language of requested → default → "de" that has it, so a page
never mixes languages. Autoescaped: customer text (a reason, a subject) is
never markup.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from maildesk.deliver.render import shipped_templates
from maildesk.tickets.labels import labels

#: The page templates shipped with maildesk (``static/`` holds the pages' script).
BUILTIN_DIR = shipped_templates() / "web"
FALLBACK_LANGUAGE = "de"


class PageRenderer:
    def __init__(self, override_dir: Path | None, default_language: str = FALLBACK_LANGUAGE,
                 builtin_dir: Path = BUILTIN_DIR, timezone: str = "Europe/Berlin") -> None:
        bases = []
        if override_dir is not None and (Path(override_dir) / "web").is_dir():
            bases.append(Path(override_dir) / "web")
        bases.append(builtin_dir)
        self._bases = bases
        self._default = default_language
        self._zone = ZoneInfo(timezone)
        self._envs: dict[str, Environment] = {}

    def language_for(self, page: str, wanted: str | None) -> str:
        """The first language of the chain that has `page`."""
        chain = [c for c in (wanted, self._default, FALLBACK_LANGUAGE) if c]
        for language in chain:
            primary = language.lower().replace("_", "-").split("-", 1)[0]
            if any((base / primary / f"{page}.html.j2").is_file() for base in self._bases):
                return primary
        raise LookupError(f"no template web/<lang>/{page}.html.j2 in {self._bases}")

    def render(self, page: str, language: str | None, context: dict[str, Any]) -> str:
        chosen = self.language_for(page, language)
        values = {**context, "language": chosen, "labels": labels(chosen)}
        return self._env(chosen).get_template(f"{page}.html.j2").render(values)

    def _env(self, language: str) -> Environment:
        env = self._envs.get(language)
        if env is None:
            search = [str(base / language) for base in self._bases]
            search += [str(base) for base in self._bases]  # the shared frame
            env = Environment(loader=FileSystemLoader(search, encoding="utf-8"),
                              autoescape=select_autoescape(default=True,
                                                           default_for_string=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
            env.filters["date"] = partial(_format_date, language=language,
                                           zone=self._zone)
            self._envs[language] = env
        return env


def _format_date(value: datetime, language: str, zone: ZoneInfo) -> str:
    """A day as people in the customer's language write it."""
    local = value.astimezone(zone) if value.tzinfo else value
    if language == "de":
        return local.strftime("%d.%m.%Y")
    return f"{local.day} {local:%B} {local.year}"
