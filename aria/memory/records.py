"""The memory's value types: memories, search hits and reminders (frozen, no I/O).

Times are Unix seconds (UTC); ids are short random strings, ``m_…`` for memories and
``r_…`` for reminders, stable across export and import.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "Hit",
    "Memory",
    "MemoryKind",
    "Reminder",
    "ReminderStatus",
    "TriggerKind",
    "new_id",
]


class MemoryKind(StrEnum):
    """Four of the five kinds: working memory is the conversation window itself."""

    EPISODIC = "episodic"  # what was said, when, in which conversation
    SEMANTIC = "semantic"  # durable facts about the user and their world
    PROCEDURAL = "procedural"  # how the user wants things done, applied as instructions


class TriggerKind(StrEnum):
    """What makes a reminder (prospective memory) fire."""

    TIME = "time"  # a moment
    EVENT = "event"  # a later message about a topic
    MODEL = "model"  # a model finishing its download


class ReminderStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"  # fired, not yet shown to the user
    DELIVERED = "delivered"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Memory:
    id: str
    kind: MemoryKind
    text: str
    created_at: float
    source: str
    role: str | None = None  # episodic: "user" or "assistant"
    conversation: str | None = None  # episodic: the conversation it belongs to
    slot: str | None = None  # semantic: the exclusive slot it fills ("residence")
    origin: str | None = None  # the user's turn it was learned from (or answers)
    superseded_by: str | None = None  # semantic: the newer fact that replaced it
    superseded_at: float | None = None

    @property
    def active(self) -> bool:
        return self.superseded_by is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (export, the API, ``--json``)."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["created"] = _iso(self.created_at)
        return data


@dataclass(frozen=True)
class Hit:
    """One search result; the ranks say which retriever found it (None: not in its top)."""

    memory: Memory
    score: float
    similarity: float | None
    vector_rank: int | None
    keyword_rank: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.memory.to_dict(),
            "score": round(self.score, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "vector_rank": self.vector_rank,
            "keyword_rank": self.keyword_rank,
        }


@dataclass(frozen=True)
class Reminder:
    id: str
    text: str  # what to remind ("call the bank")
    request: str  # what the user said
    trigger: TriggerKind
    created_at: float
    due_at: float | None = None  # time trigger
    event: str | None = None  # event trigger: the topic
    model: str | None = None  # model trigger: the model id
    fired_at: float | None = None
    fired_by: str | None = None  # the message that matched an event trigger
    delivered_at: float | None = None

    @property
    def status(self) -> ReminderStatus:
        if self.delivered_at is not None:
            return ReminderStatus.DELIVERED
        if self.fired_at is not None:
            return ReminderStatus.FIRED
        return ReminderStatus.PENDING

    def describe(self) -> str:
        """When it fires, in words."""
        if self.trigger is TriggerKind.TIME and self.due_at is not None:
            local = datetime.fromtimestamp(self.due_at).astimezone()
            return f"at {local:%Y-%m-%d %H:%M}"
        if self.trigger is TriggerKind.EVENT:
            return f"when you talk about {self.event}"
        return f"when {self.model} is installed"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trigger"] = self.trigger.value
        data["status"] = self.status.value
        data["due"] = _iso(self.due_at)
        data["fired"] = _iso(self.fired_at)
        data["when"] = self.describe()
        return data
