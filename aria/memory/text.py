"""Words of a text as keyword search and event triggers see them (pure, no I/O).

Words are case-folded and stripped of accents (so "Café" finds "cafe"), and the words
that carry no topic in English, French, German or Spanish are dropped
(``data/stopwords.toml``). There is no stemmer per language: two words match when they
are equal, differ by a plural ending, or share a long enough beginning ("jardin" /
"jardinage", "garden" / "gardening"), which works across the four languages and never
matches "trip" with "tripped".
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from aria.memory._data import data_file

__all__ = ["fold", "fts_query", "keywords", "same_word", "shared_words"]

_WORD = re.compile(r"[^\W_]+")
_PLURALS = ("s", "es", "en", "n", "e")
_PREFIX_MIN = 5  # the shorter word of a prefix match has at least this many letters
_PREFIX_SLACK = 4  # and the longer one at most this many more


def fold(text: str) -> str:
    """Lower-case ``text`` and remove its accents."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@cache
def _stopwords() -> frozenset[str]:
    table = data_file("stopwords.toml")
    return frozenset(fold(word) for words in table.values() for word in words.split())


def keywords(text: str) -> list[str]:
    """The topic words of ``text``, folded, in order, without repeats."""
    stop = _stopwords()
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(text)):
        if len(word) > 1 and word not in stop:
            seen.setdefault(word)
    return list(seen)


def same_word(a: str, b: str) -> bool:
    """Do two folded words name the same thing (equal, plural, or a long shared start)?"""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if long[len(short) :] in _PLURALS and len(short) >= 3 and long.startswith(short):
        return True
    return (
        len(short) >= _PREFIX_MIN
        and len(long) - len(short) <= _PREFIX_SLACK
        and long.startswith(short)
    )


def shared_words(wanted: list[str], text: list[str]) -> list[str]:
    """The words of ``wanted`` that some word of ``text`` matches."""
    return [w for w in wanted if any(same_word(w, t) for t in text)]


def fts_query(text: str) -> str | None:
    """An FTS5 ``MATCH`` expression finding any topic word of ``text`` (None: none left).

    Short words match exactly or as plurals; longer ones by their beginning, so the
    index (unicode61, accents removed) needs no stemmer.
    """
    terms = []
    for word in keywords(text):
        if len(word) < _PREFIX_MIN:
            terms.append(f'"{word}"' if len(word) < 3 else f'("{word}" OR "{word}s")')
        else:
            terms.append(f'"{word[: max(_PREFIX_MIN - 1, len(word) - 3)]}"*')
    return " OR ".join(terms) if terms else None
