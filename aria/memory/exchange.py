"""Export and import: a user's whole memory as one JSON document.

The document holds every memory (superseded facts too, so the history survives) and every
reminder, with their ids, times and links, but no vectors: they belong to one embedding
model and are recomputed on import. Importing skips ids already present, so importing the
same file twice changes nothing. A malformed document is refused whole, naming the first
problem, before anything is written.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aria.errors import InvalidRequest
from aria.memory.records import Memory, MemoryKind, Reminder, TriggerKind
from aria.memory.service import MemoryService

__all__ = ["FORMAT", "VERSION", "export_document", "import_document"]

FORMAT = "aria-memory"
VERSION = 1
_MAX_TEXT = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Memory(_Strict):
    id: str = Field(pattern=r"^m_[0-9a-f]{6,32}$")
    kind: MemoryKind
    text: str = Field(min_length=1, max_length=_MAX_TEXT)
    created_at: float = Field(ge=0)
    source: str = Field(max_length=64)
    role: Literal["user", "assistant"] | None = None
    conversation: str | None = Field(None, max_length=256)
    slot: str | None = Field(None, max_length=256)
    origin: str | None = Field(None, max_length=64)
    superseded_by: str | None = Field(None, max_length=64)
    superseded_at: float | None = None


class _Reminder(_Strict):
    id: str = Field(pattern=r"^r_[0-9a-f]{6,32}$")
    text: str = Field(max_length=_MAX_TEXT)
    request: str = Field(max_length=_MAX_TEXT)
    trigger: TriggerKind
    created_at: float = Field(ge=0)
    due_at: float | None = None
    event: str | None = Field(None, max_length=_MAX_TEXT)
    model: str | None = Field(None, max_length=256)
    fired_at: float | None = None
    fired_by: str | None = Field(None, max_length=_MAX_TEXT)
    delivered_at: float | None = None


class _Document(_Strict):
    format: Literal["aria-memory"]
    version: Literal[1]
    memories: list[_Memory] = Field(default_factory=list)
    reminders: list[_Reminder] = Field(default_factory=list)


def export_document(service: MemoryService) -> dict[str, Any]:
    """Everything ``service`` remembers, as a JSON-ready document (blocking)."""
    store = service.store
    memories = store.select(limit=-1, include_superseded=True, newest_first=False)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.time(),
        "memories": [_plain(m.to_dict(), _Memory) for m in memories],
        "reminders": [_plain(r.to_dict(), _Reminder) for r in store.reminders.select()],
    }


def _plain(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    return {key: data[key] for key in model.model_fields}


async def import_document(service: MemoryService, document: Any) -> dict[str, int]:
    """Add the memories and reminders of ``document`` that are not here yet, then embed
    them. Returns counts: ``memories``, ``reminders`` (added) and ``skipped``.

    Raises:
        InvalidRequest: not an ARIA memory document (the first problem is named).
    """
    try:
        parsed = _Document.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise InvalidRequest(
            f"not an ARIA memory export: {where}: {first['msg']}", param="document"
        ) from None

    def write() -> dict[str, int]:
        added = {"memories": 0, "reminders": 0, "skipped": 0}
        for item in parsed.memories:
            if service.store.restore(Memory(**item.model_dump())):
                added["memories"] += 1
            else:
                added["skipped"] += 1
        for entry in parsed.reminders:
            if service.store.reminders.restore(Reminder(**entry.model_dump())):
                added["reminders"] += 1
            else:
                added["skipped"] += 1
        return added

    counts = await service.io(write)
    await service.sync_vectors()
    return counts
