"""Semantic facts: which exclusive slot a fact fills, and what a new fact does to old ones.

Pure decisions. A fact like "I live in Lyon" fills the exclusive slot ``residence``; a
later "I moved to Paris" fills it with another value, so it supersedes the older fact
(which stays in the history, marked superseded). The same value again, or a sentence
nearly identical to a known fact (cosine at least the measured duplicate threshold), is a
duplicate and adds nothing. Facts in no slot ("allergic to penicillin", "likes jazz") can
coexist, so they are never superseded automatically: ``aria memory forget`` or an explicit
``supersedes`` does it. Slot patterns are data (``data/phrases.toml``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from aria.memory._data import data_file
from aria.memory.records import Memory
from aria.memory.text import fold

__all__ = ["Add", "Duplicate", "Outcome", "Slot", "Supersede", "decide", "slot_of"]


@dataclass(frozen=True)
class Slot:
    name: str  # "residence", "favourite:colour", "role:dentist"
    value: str  # folded


@dataclass(frozen=True)
class Duplicate:
    existing: str


@dataclass(frozen=True)
class Supersede:
    older: tuple[str, ...]


@dataclass(frozen=True)
class Add:
    pass


Outcome = Duplicate | Supersede | Add


@cache
def _slots() -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
    return tuple(
        (slot["name"], tuple(re.compile(p, re.IGNORECASE) for p in slot["patterns"]))
        for slot in data_file("phrases.toml")["slots"]
    )


def slot_of(text: str) -> Slot | None:
    """The exclusive slot ``text`` fills, with its value, if any."""
    clean = " ".join(text.replace("\u2019", "'").split())
    for name, patterns in _slots():
        for pattern in patterns:
            match = pattern.search(clean)
            if match is None:
                continue
            value = fold(match["value"]).strip(" .,!;:")
            key = match.groupdict().get("key")
            full = f"{name}:{fold(key).strip()}" if key else name
            return Slot(full, value) if value else None
    return None


def decide(
    text: str,
    slot: Slot | None,
    neighbours: Sequence[tuple[Memory, float]],
    *,
    duplicate_at: float,
) -> Outcome:
    """What adding the fact ``text`` does, given the active semantic facts most similar to
    it and every active fact in its slot (``neighbours``: memory and cosine similarity)."""
    if slot is not None:
        same = [m for m, _ in neighbours if m.slot == slot.name]
        for memory in same:
            known = slot_of(memory.text)
            if known is not None and known.value == slot.value:
                return Duplicate(memory.id)
        if same:
            return Supersede(tuple(m.id for m in same))
    wanted = fold(text).strip(" .!")
    for memory, similarity in neighbours:
        equal = fold(memory.text).strip(" .!") == wanted or similarity >= duplicate_at
        if equal and (slot is None or memory.slot in (None, slot.name)):
            return Duplicate(memory.id)
    return Add()
