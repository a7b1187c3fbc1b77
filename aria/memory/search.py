"""Hybrid retrieval: keyword (BM25) and meaning (cosine) ranked together.

Each retriever returns its best candidates; reciprocal rank fusion (Cormack et al., 2009:
``score = sum 1 / (k + rank)``) merges the two lists without having to put BM25 and
cosine on one scale. A question about a time ("last Tuesday", "hier") is restricted to that
period and the time words are left out of the query. ``vector`` and ``keyword`` modes run
one retriever alone (the evaluation compares the three side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from aria.memory.records import Hit, MemoryKind
from aria.memory.store import MemoryStore
from aria.memory.text import fts_query
from aria.memory.timeparse import find_window

__all__ = ["Mode", "Query", "Ranked", "fuse", "plan_query", "search"]

RRF_K = 60
DEPTH = 50  # candidates taken from each retriever before fusion


class Mode(StrEnum):
    HYBRID = "hybrid"
    VECTOR = "vector"
    KEYWORD = "keyword"


@dataclass(frozen=True)
class Query:
    text: str  # what to look for, time words removed
    vector: list[float] | None
    kinds: tuple[MemoryKind, ...] = tuple(MemoryKind)
    since: float | None = None
    until: float | None = None
    limit: int = 5
    include_superseded: bool = False


def plan_query(text: str, now: datetime) -> tuple[str, float | None, float | None]:
    """``text`` without its time expression, and the period it names (``since``, ``until``)."""
    window = find_window(text, now)
    if window is None:
        return text, None, None
    start, end = window.span
    rest = " ".join(f"{text[:start]} {text[end:]}".split())
    return rest or text, window.start.timestamp(), window.end.timestamp()


class Ranked(NamedTuple):
    pk: int
    score: float
    similarity: float | None
    vector_rank: int | None
    keyword_rank: int | None


def fuse(vector: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]]) -> list[Ranked]:
    """Reciprocal rank fusion of the two retrievers' ``(pk, score)`` lists, best first."""
    table: dict[int, Ranked] = {}
    for rank, (pk, cosine) in enumerate(vector, 1):
        table[pk] = Ranked(pk, 1.0 / (RRF_K + rank), cosine, rank, None)
    for rank, (pk, _) in enumerate(keyword, 1):
        seen = table.get(pk, Ranked(pk, 0.0, None, None, None))
        table[pk] = seen._replace(score=seen.score + 1.0 / (RRF_K + rank), keyword_rank=rank)
    return sorted(table.values(), key=lambda item: (-item.score, item.pk))


def search(store: MemoryStore, query: Query, mode: Mode = Mode.HYBRID) -> list[Hit]:
    """The ``query.limit`` best memories for ``query`` by ``mode``."""
    vector: list[tuple[int, float]] = []
    keyword: list[tuple[int, float]] = []
    if mode is not Mode.KEYWORD and query.vector is not None:
        vector = store.similar(
            query.vector,
            DEPTH,
            kinds=query.kinds,
            since=query.since,
            until=query.until,
            include_superseded=query.include_superseded,
        )
    if mode is not Mode.VECTOR and (match := fts_query(query.text)) is not None:
        keyword = store.keyword(
            match,
            DEPTH,
            kinds=query.kinds,
            since=query.since,
            until=query.until,
            include_superseded=query.include_superseded,
        )
    ranked = fuse(vector, keyword)[: query.limit]
    if query.vector is not None and any(r.similarity is None for r in ranked):
        cosines = store.cosines([r.pk for r in ranked], query.vector)
        ranked = [r._replace(similarity=cosines.get(r.pk, r.similarity)) for r in ranked]
    memories = store.by_pk([item.pk for item in ranked])
    return [
        Hit(memories[r.pk], r.score, r.similarity, r.vector_rank, r.keyword_rank)
        for r in ranked
        if r.pk in memories
    ]
