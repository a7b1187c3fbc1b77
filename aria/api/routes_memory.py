"""``/v1/memory``: the caller's own memories and reminders (docs/api.md, docs/memory.md).

Every endpoint works on the memory of the request's API key (or, without a key, the local
user) and answers 403 ``memory_disabled`` where the operator has not turned memory on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from aria.api.memory import user_memory
from aria.errors import InvalidRequest
from aria.memory import (
    MemoryKind,
    Mode,
    ReminderStatus,
    export_document,
    import_document,
)

__all__ = ["router"]

router = APIRouter(tags=["memory"])

MEMORY_ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Invalid request (OpenAI error object)"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "Memory is off for this node or caller (memory_disabled)"},
    404: {"description": "No memory or reminder has that id"},
}

_Text = Annotated[str, Field(min_length=1, max_length=20_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewMemory(_Body):
    text: _Text
    kind: MemoryKind | None = Field(
        None, description="semantic, procedural or episodic (default: guessed from the text)"
    )


class MemorySearch(_Body):
    query: _Text
    limit: Annotated[int, Field(ge=1, le=50)] = 5
    kinds: list[MemoryKind] | None = None
    mode: Mode = Mode.HYBRID
    history: bool = Field(False, description="Include superseded facts.")


class NewReminder(_Body):
    text: _Text


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items}


@router.get("/v1/memory", responses=MEMORY_ERRORS)
async def list_memories(
    request: Request,
    kind: MemoryKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    history: bool = False,
) -> dict[str, Any]:
    """The caller's memories, newest first."""
    service = await user_memory(request)
    memories = await service.io(
        lambda: service.store.select(
            kinds=[kind] if kind else None, limit=limit, offset=offset, include_superseded=history
        )
    )
    return _listing([m.to_dict() for m in memories])


@router.post("/v1/memory", responses=MEMORY_ERRORS, status_code=201)
async def add_memory(body: NewMemory, request: Request) -> dict[str, Any]:
    """Remember a fact, an instruction or an episode (deduplicated; a newer fact in the
    same slot supersedes the older one)."""
    service = await user_memory(request)
    learned = await service.add(body.text, kind=body.kind, source="api")
    return {
        "memory": learned.memory.to_dict() if learned.memory else None,
        "duplicate_of": learned.duplicate_of,
        "superseded": list(learned.superseded),
        "note": learned.note(),
    }


@router.post("/v1/memory/search", responses=MEMORY_ERRORS)
async def search_memories(body: MemorySearch, request: Request) -> dict[str, Any]:
    """Hybrid (keyword + meaning) search; a time in the query ("last Tuesday") narrows it."""
    service = await user_memory(request)
    hits = await service.search(
        body.query,
        limit=body.limit,
        kinds=body.kinds,
        mode=body.mode,
        include_superseded=body.history,
    )
    return _listing([hit.to_dict() for hit in hits])


@router.get("/v1/memory/export", responses=MEMORY_ERRORS)
async def export_memories(request: Request) -> dict[str, Any]:
    """Everything the caller's memory holds, as one document ``POST /v1/memory/import`` reads."""
    service = await user_memory(request)
    return await service.io(export_document, service)


@router.post("/v1/memory/import", responses=MEMORY_ERRORS)
async def import_memories(request: Request) -> dict[str, Any]:
    """Add what an export holds and this memory lacks (ids already here are skipped)."""
    service = await user_memory(request)
    try:
        document = await request.json()
    except ValueError:
        raise InvalidRequest("the body is not JSON", param="document") from None
    return await import_document(service, document)


@router.get("/v1/memory/reminders", responses=MEMORY_ERRORS)
async def list_reminders(request: Request, status: ReminderStatus | None = None) -> dict[str, Any]:
    """The caller's reminders (``status``: pending, fired or delivered)."""
    service = await user_memory(request)
    reminders = await service.io(service.store.reminders.select, status)
    return _listing([r.to_dict() for r in reminders])


@router.post("/v1/memory/reminders", responses=MEMORY_ERRORS, status_code=201)
async def add_reminder(body: NewReminder, request: Request) -> dict[str, Any]:
    """A reminder from a sentence: a time ("tomorrow at 9 call the bank"), an event ("next
    time I talk about the trip, remind me to renew my passport") or a model download."""
    service = await user_memory(request)
    reminder = await service.remind(body.text, source="api")
    return reminder.to_dict()


@router.post("/v1/memory/reminders/deliver", responses=MEMORY_ERRORS)
async def deliver_reminders(request: Request) -> dict[str, Any]:
    """Fire what is due and return every fired reminder not shown yet (each only once)."""
    service = await user_memory(request)
    return _listing([r.to_dict() for r in await service.tick()])


@router.get("/v1/memory/{memory_id}", responses=MEMORY_ERRORS)
async def get_memory(memory_id: str, request: Request) -> dict[str, Any]:
    """One memory or reminder by id."""
    service = await user_memory(request)
    if memory_id.startswith("r_"):
        return (await service.io(service.store.reminders.get, memory_id)).to_dict()
    return (await service.io(service.store.get, memory_id)).to_dict()


@router.delete("/v1/memory/{memory_id}", responses=MEMORY_ERRORS)
async def forget_memory(memory_id: str, request: Request) -> dict[str, Any]:
    """Forget a memory or reminder for good (with the exchange it was learned in); the
    file is compacted so no trace of it is left."""
    service = await user_memory(request)
    return {"deleted": await service.forget([memory_id])}


@router.delete("/v1/memory", responses=MEMORY_ERRORS)
async def forget_all(
    request: Request,
    confirm: Annotated[Literal["yes"] | None, Query(description="Must be `yes`.")] = None,
    kind: MemoryKind | None = None,
) -> dict[str, Any]:
    """Forget every memory (of ``kind``; without it, every reminder too). ``confirm=yes``."""
    if confirm != "yes":
        raise InvalidRequest("forgetting everything needs ?confirm=yes", param="confirm")
    service = await user_memory(request)
    kinds = [kind] if kind else None
    return {"deleted": await service.io(service.store.forget_all, kinds)}
