"""When a reminder fires (pure decisions; claiming them is :mod:`aria.memory.reminders`).

A time reminder fires when its moment has come. An event reminder fires on a later
message about its topic: the message is similar enough in meaning to the topic, or shares
a topic word with it and is similar enough to exclude a mere homonym. The topic is not
only its words: at creation it takes the meaning of the user's memories it refers to ("the
trip" of a user who booked flights to Osaka), a centroid of their vectors. The thresholds are
measured on the evaluation set (``data/thresholds.toml``). A model reminder fires once
the model is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from aria.memory._data import data_file
from aria.memory.text import shared_words

__all__ = ["EventMatch", "Thresholds", "match_event", "measured_thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """The measured similarity thresholds (see ``data/thresholds.toml``)."""

    event_similarity: float
    event_keyword_similarity: float
    duplicate_similarity: float
    recall_similarity: float
    recall_keyword_similarity: float
    event_context_similarity: float


@cache
def measured_thresholds() -> Thresholds:
    """The thresholds shipped in ``data/thresholds.toml``."""
    return Thresholds(**{k: float(v) for k, v in data_file("thresholds.toml").items()})


@dataclass(frozen=True)
class EventMatch:
    fires: bool
    similarity: float | None
    shared: tuple[str, ...]


def match_event(
    message_vector: Any,
    message_words: list[str],
    event_vector: Any,
    event_words: list[str],
    thresholds: Thresholds,
) -> EventMatch:
    """Does a message (its vector and :func:`~aria.memory.text.keywords`) hit an event
    topic? Without vectors (no embedding model), only a word match on most of the topic's
    words counts."""
    shared = tuple(shared_words(event_words, message_words))
    if message_vector is None or event_vector is None:
        needed = max(1, (len(event_words) + 1) // 2)
        return EventMatch(bool(event_words) and len(shared) >= needed, None, shared)
    a = np.asarray(message_vector, dtype=np.float32)
    b = np.asarray(event_vector, dtype=np.float32)
    similarity = float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
    fires = similarity >= thresholds.event_similarity or (
        bool(shared) and similarity >= thresholds.event_keyword_similarity
    )
    return EventMatch(fires, similarity, shared)
