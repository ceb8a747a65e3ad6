"""The help articles directory ([portal] articles_dir), read into an index.

Ops add an article by adding a file: `<dir>/drucker/fehler-42.md` is the
article "drucker/fehler-42" (its URL /portal/help/drucker/fehler-42) in
the category "drucker"; nested folders make "a / b"; files at the top are
in the category "" (the templates call it General). The title is the
first level-1 heading, else the file name.

No restart needed: at most every RESCAN_SECONDS a request walks the tree
(names, sizes, mtimes: cheap) and rebuilds the index when anything
changed; a file is read and rendered again only when its own size or mtime
did. Skipped: hidden files and folders (".name"), anything whose real path
lies outside the directory (a symlink out of it), articles over MAX_BYTES
and images over MAX_IMAGE_BYTES (a warning names them once).

A page never turns a request path into a file path: the slug is a key of
the loaded index, and the files the image route serves are the ones the
walk found inside the directory.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mode
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from maildesk.articles import render, search
from maildesk.config import Settings

log = logging.getLogger(__name__)

SUFFIX = ".md"
MAX_BYTES = 1024 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
RESCAN_SECONDS = 3.0
#: The pages' URL of an article: HELP_PATH + "/" + slug (web/portal/help_page.py).
HELP_PATH = "/portal/help"
#: Slugs the help pages' own routes take (an article there could not be reached).
RESERVED = ("suggest", "files")
SUGGESTIONS = 5


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    category: str  # "" at the top of the directory
    url: str
    html: str
    text: str


@dataclass(frozen=True)
class Category:
    name: str  # "" = General
    anchor: str  # the list page's element id
    articles: tuple[Article, ...]


@dataclass(frozen=True)
class Found:
    """A search result: the article and the plain text around the match."""

    article: Article
    snippet: str


@dataclass(frozen=True)
class Shelf:
    """One consistent state of the directory."""

    present: bool
    articles: dict[str, Article]
    categories: tuple[Category, ...]
    images: dict[str, Path]
    index: search.Index

    def search(self, query: str, limit: int | None = None) -> list[Found]:
        return [Found(self.articles[hit.key], hit.snippet)
                for hit in self.index.search(query, limit)]


EMPTY = Shelf(False, {}, (), {}, search.Index(()))

#: (relative path, mtime_ns, size) of every file taken: the tree's fingerprint.
Entry = tuple[str, int, int]
#: An article file's version (mtime_ns, size) and what was made of it.
_Cached = tuple[int, int, render.Rendered, search.Prepared]


@dataclass
class Library:
    """The articles under `root`, re-read when the tree changes."""

    root: Path
    rescan_seconds: float = RESCAN_SECONDS
    _shelf: Shelf = EMPTY
    _fingerprint: tuple[Entry, ...] | None = None
    _checked: float = float("-inf")
    _rendered: dict[str, _Cached] = field(default_factory=dict)
    _warned: set[tuple[str, int, int]] = field(default_factory=set)
    _missing_logged: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what the pages call ----------------------------------------------------------------

    def shelf(self) -> Shelf:
        """The current articles (a walk of the tree when one is due)."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.rescan_seconds:
                self._checked = now
                self._refresh()
            return self._shelf

    def article(self, slug: str) -> Article | None:
        return self.shelf().articles.get(slug)

    def search(self, query: str, limit: int | None = None) -> list[Found]:
        return self.shelf().search(query, limit)

    def suggest(self, text: str, limit: int = SUGGESTIONS) -> list[Found]:
        """Articles for a new request's subject as it is typed (nothing
        for fewer than 3 characters: too early to guess)."""
        if len(text.strip()) < 3:
            return []
        return self.search(text, limit)

    def image(self, path: str) -> Path | None:
        """The file of an image the walk found (`path` relative, as in
        render.FILES_PREFIX URLs); None for anything else."""
        return self.shelf().images.get(path)

    # -- reading the tree -------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            real_root = self.root.resolve(strict=True)
        except OSError:
            real_root = None
        if real_root is None or not real_root.is_dir():
            if not self._missing_logged:
                log.info("articles: no directory %s: no help articles", self.root)
                self._missing_logged = True
            self._shelf, self._fingerprint, self._rendered = EMPTY, None, {}
            return
        self._missing_logged = False
        articles, images = self._walk(real_root)
        fingerprint = tuple(sorted(e for e, _ in articles + images))
        if fingerprint == self._fingerprint and self._shelf.present:
            return
        self._shelf = self._build(sorted(e for e, _ in articles),
                                  {e[0]: p for e, p in articles},
                                  {e[0]: p for e, p in images})
        self._fingerprint = fingerprint

    def _walk(self, root: Path) -> tuple[list[tuple[Entry, Path]], list[tuple[Entry, Path]]]:
        """The article and image files under root, each with its real path."""
        articles: list[tuple[Entry, Path]] = []
        images: list[tuple[Entry, Path]] = []
        seen = {root}
        pending = [(root, "")]
        while pending:
            folder, relative = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                log.warning("articles: cannot read folder %s: %s", folder, exc)
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                name = f"{relative}{entry.name}"
                try:
                    real = Path(entry.path).resolve(strict=True)
                    stat = real.stat()
                except OSError:
                    continue  # a dangling link, or gone meanwhile
                if not real.is_relative_to(root):
                    self._warn_once("articles: %s leads outside the directory: skipped",
                                    name, 0, 0)
                    continue
                if stat_mode.S_ISDIR(stat.st_mode):
                    if real not in seen:
                        seen.add(real)
                        pending.append((real, name + "/"))
                    continue
                if not stat_mode.S_ISREG(stat.st_mode):
                    continue  # a pipe or a device: never opened
                suffix = os.path.splitext(entry.name)[1].lower()
                key = (name, stat.st_mtime_ns, stat.st_size)
                if suffix == SUFFIX:
                    if stat.st_size > MAX_BYTES:
                        self._warn_once("articles: %s is larger than 1 MB: skipped", *key)
                    else:
                        articles.append((key, real))
                elif suffix in render.IMAGE_SUFFIXES:
                    if stat.st_size > MAX_IMAGE_BYTES:
                        self._warn_once("articles: image %s is larger than 5 MB: skipped",
                                        *key)
                    else:
                        images.append((key, real))
        return articles, images

    def _warn_once(self, message: str, name: str, mtime: int, size: int) -> None:
        if (name, mtime, size) not in self._warned:
            self._warned.add((name, mtime, size))
            log.warning(message, name)

    def _build(self, entries: list[Entry], paths: dict[str, Path],
               images: dict[str, Path]) -> Shelf:
        rendered: dict[str, _Cached] = {}
        articles: dict[str, Article] = {}
        documents: list[search.Prepared] = []
        for name, mtime, size in entries:
            slug = name[: -len(SUFFIX)]
            if slug in RESERVED or slug.startswith(tuple(r + "/" for r in RESERVED)):
                self._warn_once("articles: %s has a name the help pages use: skipped",
                                name, mtime, size)
                continue
            cached = self._rendered.get(name)
            prepared: search.Prepared | None = None
            if cached is not None and cached[:2] == (mtime, size):
                result, prepared = cached[2], cached[3]
            else:
                try:
                    raw = paths[name].read_bytes()
                except OSError as exc:
                    log.warning("articles: cannot read %s: %s", name, exc)
                    continue
                folder = name.rpartition("/")[0]
                result = render.render(raw.decode("utf-8", errors="replace")
                                       .removeprefix("\ufeff"), folder)
            folder, _, filename = name.rpartition("/")
            article = articles[slug] = Article(
                slug=slug, title=result.title or filename[: -len(SUFFIX)],
                category=" / ".join(folder.split("/")) if folder else "",
                url=f"{HELP_PATH}/{quote(slug)}", html=result.html, text=result.text)
            if prepared is None:
                prepared = search.prepare(search.Document(slug, article.title, result.headings,
                                                          result.text))
            documents.append(prepared)
            rendered[name] = (mtime, size, result, prepared)
        self._rendered = rendered
        return Shelf(True, articles, _categories(articles.values()), images,
                     search.Index(documents))


def _categories(articles: Iterable[Article]) -> tuple[Category, ...]:
    by_name: dict[str, list[Article]] = {}
    for article in articles:
        by_name.setdefault(article.category, []).append(article)
    names = sorted(by_name, key=lambda n: (n != "", n.casefold()))
    return tuple(Category(name, f"category-{number}",
                          tuple(sorted(by_name[name], key=lambda a: a.title.casefold())))
                 for number, name in enumerate(names, start=1))


_LIBRARIES: dict[Path, Library] = {}
_REGISTRY_LOCK = threading.Lock()


def for_settings(settings: Settings) -> Library:
    """The one Library of the configured directory (shared by every page
    of the process, so the walk and the rendering are done once)."""
    root = settings.articles_dir
    with _REGISTRY_LOCK:
        library = _LIBRARIES.get(root)
        if library is None:
            library = _LIBRARIES[root] = Library(root)
        return library
