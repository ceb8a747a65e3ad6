"""The articles directory as ops fill it: folders are categories, titles
from the first heading, a new or changed file shows without a restart,
and nothing outside the directory (or hidden, or oversized) is taken."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from maildesk.articles import library as articles
from maildesk.articles.library import Library


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def fresh(root: Path) -> Library:
    return Library(root, rescan_seconds=0)


def test_folders_are_categories_and_the_first_heading_is_the_title(tmp_path: Path) -> None:
    write(tmp_path, "willkommen.md", "# Willkommen im Portal\n\nHallo.")
    write(tmp_path, "drucker/fehler-42.md", "Vorab.\n\n# Fehler 42 am Drucker\n\nPapier.")
    write(tmp_path, "drucker/laser/toner.md", "Kein Titel hier, nur Text.")
    write(tmp_path, "notizen.txt", "# Keine Markdown-Datei")
    shelf = fresh(tmp_path).shelf()
    assert sorted(shelf.articles) == ["drucker/fehler-42", "drucker/laser/toner", "willkommen"]
    by_slug = shelf.articles
    assert by_slug["willkommen"].title == "Willkommen im Portal"
    assert by_slug["drucker/fehler-42"].title == "Fehler 42 am Drucker"
    assert by_slug["drucker/laser/toner"].title == "toner"  # no heading: the file name
    assert [(c.name, [a.slug for a in c.articles]) for c in shelf.categories] == [
        ("", ["willkommen"]), ("drucker", ["drucker/fehler-42"]),
        ("drucker / laser", ["drucker/laser/toner"])]
    assert by_slug["drucker/fehler-42"].url == "/portal/help/drucker/fehler-42"


def test_names_with_spaces_and_umlauts_get_a_quoted_url(tmp_path: Path) -> None:
    write(tmp_path, "Drucker & Scanner/Störung 1.md", "# Störung")
    article = fresh(tmp_path).article("Drucker & Scanner/Störung 1")
    assert article is not None and article.category == "Drucker & Scanner"
    assert article.url == "/portal/help/Drucker%20%26%20Scanner/St%C3%B6rung%201"


def test_undecodable_bytes_are_replaced_not_fatal(tmp_path: Path) -> None:
    write(tmp_path, "alt.md", b"# Gr\xf6\xdfe\n\nText \xff.")
    article = fresh(tmp_path).article("alt")
    assert article is not None and article.title == "Gr\ufffd\ufffde"


def test_hidden_files_and_folders_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, ".entwurf.md", "# Entwurf")
    write(tmp_path, ".git/info.md", "# Intern")
    write(tmp_path, "sichtbar.md", "# Sichtbar")
    assert list(fresh(tmp_path).shelf().articles) == ["sichtbar"]


def test_symlinks_out_of_the_directory_are_skipped(tmp_path: Path) -> None:
    root, outside = tmp_path / "articles", tmp_path / "secret"
    write(outside, "passwd.md", "# Geheim\n\nroot:x:0:0")
    write(outside, "bild.png", b"\x89PNG\r\n\x1a\n")
    write(root, "echt.md", "# Echt")
    write(root, "drucker/anleitung.md", "# Anleitung")
    os.symlink(outside / "passwd.md", root / "link.md")
    os.symlink(outside, root / "ordner")
    os.symlink(outside / "bild.png", root / "bild.png")
    os.symlink(root / "drucker" / "anleitung.md", root / "kopie.md")  # inside: fine
    os.symlink(root, root / "drucker" / "schleife")  # a loop: walked once
    shelf = fresh(root).shelf()
    assert sorted(shelf.articles) == ["drucker/anleitung", "echt", "kopie"]
    assert shelf.images == {}
    assert not shelf.search("geheim")


def test_an_oversized_file_is_skipped_with_a_warning(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "riesig.md", "# Riesig\n\n" + "x" * articles.MAX_BYTES)
    write(tmp_path, "klein.md", "# Klein")
    library = fresh(tmp_path)
    with caplog.at_level(logging.WARNING, logger="maildesk.articles.library"):
        assert list(library.shelf().articles) == ["klein"]
        library.shelf()
    warnings = [r.getMessage() for r in caplog.records if "riesig.md" in r.getMessage()]
    assert len(warnings) == 1  # named once, not on every look


def test_a_missing_directory_means_no_articles_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    library = fresh(tmp_path / "nicht-da")
    with caplog.at_level(logging.INFO, logger="maildesk.articles.library"):
        shelf = library.shelf()
        library.shelf()
    assert not shelf.present and shelf.articles == {} and library.search("x") == []
    assert len([r for r in caplog.records if "nicht-da" in r.getMessage()]) == 1
    write(tmp_path / "nicht-da", "neu.md", "# Neu")
    assert library.article("neu") is not None  # created later: found


def test_a_file_added_later_is_found_without_a_restart(tmp_path: Path) -> None:
    write(tmp_path, "erster.md", "# Erster")
    library = fresh(tmp_path)
    assert library.search("zweiter") == []
    write(tmp_path, "neu/zweiter.md", "# Zweiter Artikel\n\nÜber Drucker.")
    assert [f.article.slug for f in library.search("zweiter")] == ["neu/zweiter"]
    (tmp_path / "erster.md").unlink()
    assert library.article("erster") is None


def test_a_changed_file_is_rendered_again_an_unchanged_one_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "a.md", "# Alt\n\nalter Text")
    write(tmp_path, "b.md", "# B")
    library = fresh(tmp_path)
    assert library.article("a").title == "Alt"  # type: ignore[union-attr]
    calls: list[str] = []
    real = articles.render.render
    monkeypatch.setattr(articles.render, "render",
                        lambda text, folder="": calls.append(text) or real(text, folder))
    path.write_text("# Neu\n\nneuer Text, länger als vorher", encoding="utf-8")
    os.utime(path, ns=(1, 1_000_000_000))
    article = library.article("a")
    assert article is not None and article.title == "Neu" and "neuer Text" in article.html
    assert len(calls) == 1  # b.md came from the cache
    assert [f.article.slug for f in library.search("neuer")] == ["a"]
    assert library.search("alter") == []


def test_the_tree_is_walked_at_most_every_few_seconds(tmp_path: Path) -> None:
    library = Library(tmp_path, rescan_seconds=60)
    assert library.shelf().articles == {}
    write(tmp_path, "neu.md", "# Neu")
    assert library.article("neu") is None  # not yet looked again
    library._checked -= 61
    assert library.article("neu") is not None


def test_images_are_found_inside_and_reserved_names_skipped(tmp_path: Path) -> None:
    write(tmp_path, "drucker/kabel.png", b"\x89PNG\r\n\x1a\n")
    write(tmp_path, "drucker/logo.svg", "<svg onload='alert(1)'/>")
    write(tmp_path, "suggest.md", "# Verdeckt")
    write(tmp_path, "files/x.md", "# Verdeckt")
    shelf = fresh(tmp_path).shelf()
    assert list(shelf.images) == ["drucker/kabel.png"]
    assert shelf.articles == {}


@pytest.mark.parametrize("slug", ["../etc/passwd", "/etc/passwd", "drucker/../../x",
                                  "a\\..\\b", "a\x00b", "%2e%2e/x", ""])
def test_a_slug_is_only_a_key_never_a_path(tmp_path: Path, slug: str) -> None:
    root = tmp_path / "articles"
    write(root, "drucker/x.md", "# X")
    write(tmp_path, "etc/passwd.md", "# root")
    write(tmp_path, "x.md", "# X draussen")
    library = fresh(root)
    assert library.article(slug) is None
    assert library.image(slug) is None


def test_for_settings_shares_one_library_per_directory(tmp_path: Path) -> None:
    from types import SimpleNamespace
    first = articles.for_settings(SimpleNamespace(articles_dir=tmp_path))  # type: ignore[arg-type]
    again = articles.for_settings(SimpleNamespace(articles_dir=tmp_path))  # type: ignore[arg-type]
    assert first is again


def test_suggest_waits_for_three_characters_and_gives_five_at_most(tmp_path: Path) -> None:
    for n in range(8):
        write(tmp_path, f"drucker-{n}.md", f"# Drucker Hilfe {n}{n}")
    library = fresh(tmp_path)
    assert library.suggest("dr") == []
    assert len(library.suggest("dru")) == 5
    assert library.suggest("drucker hilfe 77")[0].article.slug == "drucker-7"
