"""Full-text search over the help articles, as a customer types.

Case-insensitive and German-aware: every word is indexed in two spellings,
umlauts as the plain vowel and as the vowel with "e" (Störung: "storung"
and "stoerung"; ß is "ss"), and a query word matches if any of its
spellings does, so "Stoerung", "Störung" and "Storung" all find "Störung".
Every query word (of at least MIN_WORD characters) must match (AND); the
last one may be a prefix, because the customer is still typing it. An
article whose title has the words ranks above one whose headings have
them, above one where only the body has them.

The index is built once per set of articles (an inverted index per field
and a sorted vocabulary for the prefix), so a query over a few thousand
articles is a handful of set operations. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MIN_WORD = 2
#: Longest query looked at (the search box's limit as well).
MAX_QUERY = 200
#: A match in the title counts as much as this many in headings ...
WEIGHTS = (100, 10, 1)  # title, headings, body
SNIPPET_CHARS = 160
_WORD = re.compile(r"\w+")
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})


@dataclass(frozen=True)
class Document:
    """An article as the search sees it; `key` names it to the caller."""

    key: str
    title: str
    headings: tuple[str, ...]
    body: str


@dataclass(frozen=True)
class Hit:
    key: str
    score: int
    snippet: str


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=65536)
def spellings(word: str) -> frozenset[str]:
    """The forms a word is indexed and looked up under."""
    folded = unicodedata.normalize("NFKC", word).casefold()  # casefold: ß -> ss
    return frozenset({_strip_marks(folded), _strip_marks(folded.translate(_UMLAUTS))})


def words(text: str) -> list[str]:
    """The words of a text worth searching for (MIN_WORD characters or more)."""
    return [w for w in _WORD.findall(text) if len(w) >= MIN_WORD]


def _tokens(text: str) -> set[str]:
    found: set[str] = set()
    for word in words(text):
        found |= spellings(word)
    return found


@dataclass(frozen=True)
class Prepared:
    """A document with its folded words per field (title, headings, body):
    made once per article version, so a rebuilt index folds nothing again."""

    document: Document
    fields: tuple[frozenset[str], frozenset[str], frozenset[str]]


def prepare(doc: Document) -> Prepared:
    return Prepared(doc, (frozenset(_tokens(doc.title)), frozenset(_tokens(" ".join(doc.headings))),
                          frozenset(_tokens(doc.body))))


class Index:
    """The documents' words, per field, for `search`."""

    def __init__(self, documents: Iterable[Document | Prepared]) -> None:
        prepared = [d if isinstance(d, Prepared) else prepare(d) for d in documents]
        self._documents = [p.document for p in prepared]
        self._postings: tuple[dict[str, set[int]], ...] = ({}, {}, {})
        for number, entry in enumerate(prepared):
            for postings, tokens in zip(self._postings, entry.fields, strict=True):
                for token in tokens:
                    postings.setdefault(token, set()).add(number)
        self._vocabulary = sorted(set().union(*self._postings))

    def __len__(self) -> int:
        return len(self._documents)

    def _matching(self, forms: frozenset[str], prefix: bool) -> list[str]:
        if not prefix:
            return [f for f in forms if any(f in p for p in self._postings)]
        found: list[str] = []
        for form in forms:
            start = bisect.bisect_left(self._vocabulary, form)
            for token in self._vocabulary[start:]:
                if not token.startswith(form):
                    break
                found.append(token)
        return found

    def search(self, query: str, limit: int | None = None) -> list[Hit]:
        """The documents with every word of the query, best first."""
        wanted = [spellings(w) for w in words(query[:MAX_QUERY])]
        if not wanted:
            return []
        scores: dict[int, int] | None = None
        for position, forms in enumerate(wanted):
            tokens = self._matching(forms, prefix=position == len(wanted) - 1)
            word_scores: dict[int, int] = {}
            for weight, postings in sorted(zip(WEIGHTS, self._postings, strict=True)):
                found = set().union(*(postings.get(t, ()) for t in tokens))
                word_scores.update(dict.fromkeys(found, weight))  # the best field wins
            scores = (word_scores if scores is None else
                      {n: s + word_scores[n] for n, s in scores.items() if n in word_scores})
            if not scores:
                return []
        assert scores is not None
        ranked = sorted(scores.items(),
                        key=lambda item: (-item[1], self._documents[item[0]].title.casefold()))
        if limit is not None:
            ranked = ranked[:limit]
        return [Hit(self._documents[n].key, score, snippet(self._documents[n].body, wanted))
                for n, score in ranked]


def _matches(word: str, wanted: list[frozenset[str]]) -> bool:
    forms = spellings(word)
    last = len(wanted) - 1
    return any((forms & query) if i < last else
               any(f.startswith(q) for f in forms for q in query)
               for i, query in enumerate(wanted))


def snippet(body: str, wanted: list[frozenset[str]], width: int = SNIPPET_CHARS) -> str:
    """Plain text around the body's first word that matches the query (the
    body's start when none does): what the result list shows under a title."""
    text = " ".join(body.split())
    start = 0
    for match in _WORD.finditer(text):
        if len(match.group()) >= MIN_WORD and _matches(match.group(), wanted):
            start = match.start()
            break
    left = max(0, start - width // 3)
    if left > 0:
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    right = min(len(text), left + width)
    if right < len(text):
        space = text.rfind(" ", max(start, left), right)
        right = space if space > start else right
    return (("…" if left > 0 else "") + text[left:right].strip()
            + ("…" if right < len(text) else ""))
