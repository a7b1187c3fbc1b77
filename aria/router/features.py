"""Turn a query into a sparse feature vector (pure and deterministic).

The same function feeds training (``aria.router.train``) and run time, so the shipped
weights always see the features they were fitted on. Four kinds of features share one
hashed space of ``HASH_DIM`` slots:

- byte 2- to 4-grams of the UTF-8 text (language, code punctuation, LaTeX, number shapes),
- word unigrams and bigrams,
- cue-word counts from a ``Lexicon`` (``data/lexicon.toml``, embedded in the weights),
- hand-written rule features: writing system, code fences and indentation, operator and
  digit density, length. They carry what n-grams see poorly on a small dataset.

Hashing uses CRC-32, stable across processes and platforms (Python's ``hash`` is salted).
Long texts are clipped to their head and tail so the cost stays bounded.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["FEATURE_VERSION", "HASH_DIM", "Lexicon", "featurize"]

FEATURE_VERSION: Final = 4
HASH_DIM: Final = 1 << 16
_MASK: Final = HASH_DIM - 1

_HEAD_CHARS: Final = 1000
_TAIL_CHARS: Final = 300
_NGRAM_SIZES: Final = (2, 3, 4)
_NGRAM_SEEDS: Final = tuple((size, zlib.crc32(b"c%d:" % size)) for size in _NGRAM_SIZES)

_WORD_RE: Final = re.compile(r"\w+|[^\w\s]")
_OPERATION_RE: Final = re.compile(r"\d\s*[-+*/^×÷=<>]\s*[\d(a-z]|[a-z]\s*\^\s*\d|\d\s*%")
_LATEX_RE: Final = re.compile(r"\\(frac|int|sum|lim|sqrt|pi|cdot|infty|le|ge)\b|\$[^$]+\$")
# Writing systems by character class; the first in this order wins a tie.
_SCRIPTS: Final = tuple(
    (name, re.compile(f"[{ranges}]"))
    for name, ranges in (
        ("latin", "a-z\u00c0-\u024f"),
        ("cyrillic", "\u0400-\u052f"),
        ("greek", "\u0370-\u03ff"),
        ("hebrew", "\u0590-\u05ff"),
        ("arabic", "\u0600-\u06ff"),
        ("devanagari", "\u0900-\u097f"),
        ("thai", "\u0e00-\u0e7f"),
        ("hangul", "\u1100-\u11ff\uac00-\ud7af"),
        ("kana", "\u3040-\u30ff"),
        ("han", "\u4e00-\u9fff"),
    )
)
_LETTER_RE: Final = re.compile(r"[^\W\d_]")
_ACCENTED_RE: Final = re.compile("[\u00c0-\u024f]")
_DIGIT_RE: Final = re.compile(r"\d")
_CODE_CHAR_RE: Final = re.compile(r"[{}\[\]();=<>_/\\|&#@`:]")
_FENCE_RE: Final = re.compile("```")
_INDENT_RE: Final = re.compile(r"^(    |\t)", re.MULTILINE)
# Shapes that occur in source code and shell lines, rarely in prose or formulas (the text
# is lowercased): definitions, imports, arrows, calls with braces, statement ends, tags,
# shell interpolation, SQL clauses, command-line tools with flags.
_CODE_SYNTAX_RE: Final = re.compile(
    r"\b(def|fn|func|function)\s+[\w$]*\s*\("
    r"|\b(class|struct|impl|interface|enum)\s+\w+\s*[:({<]"
    r"|\b(const|var)\s+[\w$\[{]+[^=\n]*=|\b(public|private|protected)\s+\w+\s+\w+"
    r"|^\s*(import|package|using|#include)\s+[\w.<\"]|^\s*from\s+[\w.]+\s+import\b"
    r"|=>|->|::|\)\s*\{|;\s*$|^\s*[}\])]|</?[a-z][a-z0-9]*[ >]|\$[({]"
    r"|\bselect\s.+\sfrom\s|\b(group|order)\s+by\b"
    r"|^\s*(git|docker|kubectl|npm|pip|curl|awk|sed|grep|cd|ls|for|sudo)\s.*\s-",
    re.MULTILINE,
)
# Scripts written without spaces between words: cue words are found as substrings.
_UNSPACED_FROM: Final = 0x1100


@dataclass(frozen=True)
class Lexicon:
    """Cue words per family, compiled for fast matching (a word may hint at several)."""

    words: Mapping[str, tuple[str, ...]]
    phrases: tuple[tuple[str, str], ...]
    substrings: tuple[tuple[str, str], ...]

    @classmethod
    def from_mapping(cls, families: Mapping[str, Sequence[str]]) -> Lexicon:
        """Compile ``{"code": ["python", "stack trace", "函数"], ...}``."""
        words: dict[str, tuple[str, ...]] = {}
        phrases: list[tuple[str, str]] = []
        substrings: list[tuple[str, str]] = []
        for family, entries in sorted(families.items()):
            for entry in dict.fromkeys(entries):
                normal = _normalise(entry)
                tokens = _WORD_RE.findall(normal)
                if any(ord(ch) >= _UNSPACED_FROM for ch in normal):
                    substrings.append((normal, family))
                elif len(tokens) == 1:
                    if family not in words.get(tokens[0], ()):
                        words[tokens[0]] = (*words.get(tokens[0], ()), family)
                else:
                    phrases.append((" " + " ".join(tokens) + " ", family))
        return cls(words, tuple(phrases), tuple(substrings))

    def counts(self, tokens: Sequence[str], text: str) -> Counter[str]:
        """How many cue words of each family occur in the tokenised ``text``."""
        hits = [family for token in tokens for family in self.words.get(token, ())]
        joined = " " + " ".join(tokens) + " "
        hits += [family for phrase, family in self.phrases if phrase in joined]
        if not text.isascii():
            hits += [family for sub, family in self.substrings if sub in text]
        return Counter(hits)


def featurize(text: str, lexicon: Lexicon) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return the sorted slot indices and values of ``text``'s feature vector.

    The n-gram and word part is L2-normalised (so length does not swamp it); rule and
    cue features keep the magnitude 1.0 so their weight means the same on any text. Each
    slot carries a hash-derived sign, so colliding features tend to cancel, not add up.
    """
    clipped = _clip(_normalise(text))
    tokens = _WORD_RE.findall(clipped)
    hashes = _ngram_hashes(clipped.encode("utf-8"))
    hashes += [_hash("w:" + token) for token in tokens]
    hashes += [_hash(f"b:{a} {b}") for a, b in zip(["^", *tokens], tokens, strict=False)]
    # Presence, not counts: on short queries a repeated n-gram says little more. Signs of
    # keys sharing a slot add up, so the vector does not depend on iteration order.
    present = set(hashes)
    positive = Counter(digest & _MASK for digest in present if digest & HASH_DIM)
    negative = Counter(digest & _MASK for digest in present if not digest & HASH_DIM)
    scale = 1.0 / math.sqrt(len(present) or 1)
    vector = {slot: (positive[slot] - negative[slot]) * scale for slot in positive | negative}
    for name in _rule_features(clipped, tokens, lexicon):
        digest = _hash("r:" + name)
        vector[digest & _MASK] = 1.0 if digest & HASH_DIM else -1.0
    slots = sorted(vector)
    return (
        np.fromiter(slots, dtype=np.int64, count=len(slots)),
        np.fromiter((vector[slot] for slot in slots), dtype=np.float64, count=len(slots)),
    )


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) <= _HEAD_CHARS + _TAIL_CHARS:
        return text
    return text[:_HEAD_CHARS] + "\n" + text[-_TAIL_CHARS:]


def _hash(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


def _ngram_hashes(data: bytes) -> list[int]:
    padded = b" " + data + b" "
    hashes: list[int] = []
    for size, seed in _NGRAM_SEEDS:
        hashes += [zlib.crc32(padded[i : i + size], seed) for i in range(len(padded) - size + 1)]
    return hashes


def _rule_features(text: str, tokens: Sequence[str], lexicon: Lexicon) -> Iterable[str]:
    names = [f"script:{_dominant_script(text)}", f"words:{_bucket(len(tokens), (3, 10, 30, 100))}"]
    names += [f"cue:{family}:{min(n, 3)}" for family, n in lexicon.counts(tokens, text).items()]
    length = len(text) or 1
    accented = 0 if text.isascii() else len(_ACCENTED_RE.findall(text))
    if accented:
        letters = len(_LETTER_RE.findall(text)) or 1
        names.append("latin-accents" if accented * 40 > letters else "latin-accent-few")
    code_chars = len(_CODE_CHAR_RE.findall(text))
    names.append(f"codechars:{_bucket(code_chars * 100 // length, (2, 5, 10))}")
    digits = len(_DIGIT_RE.findall(text))
    names.append(f"digits:{_bucket(digits * 100 // length, (1, 5, 15))}")
    syntax = len(_CODE_SYNTAX_RE.findall(text))
    names.append(f"syntax:{min(syntax, 3)}")
    lines = text.count("\n") + 1
    if lines > 2:
        names.append(f"lines:{_bucket(lines, (5, 15))}")
    flags = (("fence", _FENCE_RE), ("indent", _INDENT_RE), ("operation", _OPERATION_RE))
    names += [name for name, pattern in (*flags, ("latex", _LATEX_RE)) if pattern.search(text)]
    return names


def _bucket(value: int, edges: tuple[int, ...]) -> int:
    """Index of the first edge ``value`` does not exceed (len(edges) when above all)."""
    for index, edge in enumerate(edges):
        if value <= edge:
            return index
    return len(edges)


def _dominant_script(text: str) -> str:
    if text.isascii():
        return "latin" if _SCRIPTS[0][1].search(text) else "none"
    tally = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS}
    total = sum(tally.values())
    if not total:
        return "none"
    # Japanese mixes kana with han; a tenth of kana marks the text as Japanese.
    if tally["kana"] * 10 >= total:
        return "kana"
    return max(tally, key=lambda name: tally[name])
