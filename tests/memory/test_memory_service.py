"""One user's memory as the chat and the API use it (fake embedder, real SQLite)."""

from __future__ import annotations

import pytest

from aria.errors import InvalidRequest
from aria.memory import MemoryKind, MemoryService, Mode, ReminderStatus, TriggerKind
from aria.memory.exchange import export_document, import_document
from tests.memory.conftest import Clock
from tests.memory.fakes import FakeEmbedder, FakeModels

pytestmark = pytest.mark.anyio


async def test_facts_are_deduplicated_and_superseded(service: MemoryService) -> None:
    lyon = await service.add("I live in Lyon")
    assert lyon.memory is not None and lyon.memory.kind is MemoryKind.SEMANTIC
    assert (await service.add("I now live in Lyon")).duplicate_of == lyon.memory.id
    paris = await service.add("I moved to Paris")
    assert paris.superseded == (lyon.memory.id,)
    assert "replacing an older fact" in (paris.note() or "")
    hits = await service.search("where do I live", kinds=[MemoryKind.SEMANTIC])
    assert [h.memory.text for h in hits] == ["I moved to Paris"]
    instruction = await service.add("answer in French")
    assert instruction.memory is not None and instruction.memory.kind is MemoryKind.PROCEDURAL
    with pytest.raises(InvalidRequest):
        await service.add("   ")


async def test_reminders_from_sentences(service: MemoryService, clock: Clock) -> None:
    timed = await service.remind("tomorrow at 9 call the bank")
    assert timed.trigger is TriggerKind.TIME and timed.text == "call the bank"
    assert timed.due_at is not None and timed.due_at > clock.now
    event = await service.remind("next time I talk about the trip, remind me to renew my passport")
    assert (event.trigger, event.event) == (TriggerKind.EVENT, "the trip")
    model = await service.remind("when qwen3-4b finishes downloading, tell me")
    assert (model.trigger, model.model) == (TriggerKind.MODEL, "Qwen3-4B")  # the catalog's spelling
    for bad in ("buy milk", "when nonexistent-model finishes downloading, tell me"):
        with pytest.raises(InvalidRequest):
            await service.remind(bad)


async def test_time_and_model_reminders_fire_once_when_due(
    service: MemoryService, clock: Clock, models: FakeModels
) -> None:
    timed = await service.remind("in 10 minutes check the oven")
    model = await service.remind("tell me when Qwen3-4B is downloaded")
    assert await service.tick() == []
    clock.now += 601
    models.present.add("Qwen3-4B")
    shown = await service.tick()
    assert {r.id for r in shown} == {timed.id, model.id}
    assert await service.tick() == []  # delivered once
    states = {r.id: r.status for r in service.store.reminders.select()}
    assert set(states.values()) == {ReminderStatus.DELIVERED}


async def test_without_an_embedding_model_memory_works_with_keywords(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from aria.memory import MemoryStore

    store = MemoryStore(tmp_path / "kw.sqlite3")
    service = MemoryService(store, None, clock=clock)
    await service.add("I planted tomatoes in the garden")
    assert [h.memory.text for h in await service.search("garden", mode=Mode.HYBRID)] == [
        "I planted tomatoes in the garden"
    ]
    store.close()


async def test_a_new_embedding_model_re_embeds_everything(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from aria.memory import MemoryStore

    store = MemoryStore(tmp_path / "m.sqlite3")
    first = MemoryService(store, FakeEmbedder("model-a"), clock=clock)
    await first.sync_vectors()
    await first.add("I live in Lyon")
    second = FakeEmbedder("model-b")
    assert await MemoryService(store, second, clock=clock).sync_vectors() == 1
    assert store.meta("embedding_model") == "model-b" and second.calls == 1
    store.close()


async def test_export_then_import_restores_everything_once(tmp_path, service, clock) -> None:  # type: ignore[no-untyped-def]
    from aria.memory import MemoryStore

    old = await service.add("I live in Lyon")
    await service.add("I moved to Paris")
    await service.remind("tomorrow at 9 call the bank")
    document = export_document(service)
    store = MemoryStore(tmp_path / "copy.sqlite3")
    copy = MemoryService(store, FakeEmbedder(), clock=clock)
    assert await import_document(copy, document) == {"memories": 2, "reminders": 1, "skipped": 0}
    assert await import_document(copy, document) == {"memories": 0, "reminders": 0, "skipped": 3}
    history = {m.id: m.superseded_by for m in store.select(include_superseded=True)}
    assert old.memory is not None and history[old.memory.id] is not None
    assert [h.memory.text for h in await copy.search("live", kinds=[MemoryKind.SEMANTIC])] == [
        "I moved to Paris"
    ]
    bad_id = {
        "format": "aria-memory",
        "version": 1,
        "memories": [{"id": "../x", "kind": "semantic"}],
    }
    for broken in ({}, {"format": "aria-memory", "version": 2}, bad_id):
        with pytest.raises(InvalidRequest, match="not an ARIA memory export"):
            await import_document(copy, broken)
    store.close()
