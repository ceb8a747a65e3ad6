"""Finding help articles as a customer types: German spellings, every
word, the word being typed, the best match first."""

from __future__ import annotations

import time

import pytest

from maildesk.articles.search import Document, Index, spellings

PRINTER = Document("drucker/stoerung", "Störung am Drucker", ("Papierstau beheben",),
                   "Öffnen Sie die Klappe und ziehen Sie das Papier heraus.")
NETWORK = Document("netz/wlan", "WLAN verbinden", ("Drucker im Netz",),
                   "Der Router muss eingeschaltet sein. Große Dateien dauern länger.")
MAIL = Document("mail", "E-Mail einrichten", (),
                "Bei einer Stoerung des Servers oder wenn der Drucker keine Mail schickt, "
                "prüfen Sie zuerst das Passwort.")
INDEX = Index([PRINTER, NETWORK, MAIL])


def keys(query: str) -> list[str]:
    return [hit.key for hit in INDEX.search(query)]


@pytest.mark.parametrize("query", ["Störung", "störung", "STOERUNG", "Stoerung", "storung"])
def test_umlauts_match_however_they_are_typed(query: str) -> None:
    assert "drucker/stoerung" in keys(query)


def test_an_article_written_with_oe_is_found_by_the_umlaut() -> None:
    assert "mail" in keys("Störung")


def test_sharp_s_matches_ss() -> None:
    assert keys("grosse") == keys("große") == ["netz/wlan"]


def test_every_word_must_match() -> None:
    assert keys("drucker") == ["drucker/stoerung", "netz/wlan", "mail"]
    assert keys("drucker router") == ["netz/wlan"]
    assert keys("drucker router passwort") == []


def test_the_last_word_may_be_unfinished_the_others_not() -> None:
    assert keys("papier hera") == ["drucker/stoerung"]
    assert keys("pap") == ["drucker/stoerung"]
    assert keys("pap heraus") == []  # "pap" is no whole word


def test_title_hits_rank_above_heading_hits_above_body_hits() -> None:
    ranked = INDEX.search("drucker")
    assert [h.key for h in ranked] == ["drucker/stoerung", "netz/wlan", "mail"]
    assert ranked[0].score > ranked[1].score > ranked[2].score


def test_short_words_and_empty_queries_find_nothing() -> None:
    assert keys("") == []
    assert keys("a") == []
    assert keys("   ") == []


def test_a_limit_keeps_the_best() -> None:
    assert [h.key for h in INDEX.search("drucker", limit=2)] == ["drucker/stoerung", "netz/wlan"]


def test_the_snippet_shows_the_text_around_the_first_body_hit() -> None:
    body = "Einleitung. " * 30 + "Hier steht das Passwort für den Zugang. " + "Schluss. " * 30
    hit = Index([Document("x", "Zugang", (), body)]).search("passwort")[0]
    assert "Passwort für den Zugang" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet) <= 170


def test_a_title_only_hit_shows_the_beginning_of_the_body() -> None:
    hit = Index([PRINTER]).search("Störung")[0]
    assert hit.snippet == "Öffnen Sie die Klappe und ziehen Sie das Papier heraus."


def test_the_snippet_is_plain_text_as_given() -> None:
    hit = Index([Document("x", "T", (), "Tippen Sie <b>nicht</b> & warten")]).search("tippen")[0]
    assert hit.snippet == "Tippen Sie <b>nicht</b> & warten"  # the template escapes it


def test_spellings() -> None:
    assert spellings("Übergröße") == {"ubergrosse", "uebergroesse"}
    assert spellings("Café") == {"cafe"}


def test_a_few_thousand_articles_are_searched_quickly() -> None:
    documents = [Document(f"a{n}", f"Artikel {n} über Thema{n % 50}", (f"Abschnitt {n}",),
                          " ".join(f"wort{(n * 7 + i) % 5000}" for i in range(300)))
                 for n in range(3000)]
    index = Index(documents)
    started = time.perf_counter()
    for query in ("thema1", "artikel wort1", "wort", "über the"):
        index.search(query, limit=5)
    assert time.perf_counter() - started < 1.0
