"""Memory around each chat turn: recall, learn, fire, build the prompt, keep it private."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from aria.backends import GenerationJob
from aria.config import AriaPaths
from aria.memory import (
    LOCAL_USER,
    MemoryHub,
    MemoryKind,
    MemoryService,
    Reminder,
    TriggerKind,
    begin_turn,
    end_turn,
    preparer,
    watch_reminders,
)
from tests.memory.fakes import FakeEmbedder

pytestmark = pytest.mark.anyio


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_a_turn_learns_recalls_and_is_remembered(service: MemoryService) -> None:
    first = await begin_turn(
        service, _user("Remember that my sister Clara lives in Rome"), "c1", source="chat"
    )
    assert first is not None and first.learned is not None and first.learned.memory is not None
    assert first.learned.memory.origin == first.turn_id  # linked to the turn it came from
    await end_turn(service, first, "Noted: Clara lives in Rome.", source="chat")
    await service.add("answer in French")

    later = await begin_turn(
        service, _user("Where does my sister Clara live?"), "c2", source="chat"
    )

    assert later is not None
    assert [m.text for m in later.recalled][0] == "my sister Clara lives in Rome"
    assert all(m.text != "Remember that my sister Clara lives in Rome" for m in later.recalled)
    assert [m.text for m in later.procedures] == ["answer in French"]
    episodes = service.store.select(kinds=[MemoryKind.EPISODIC], limit=10)
    assert {m.role for m in episodes} == {"user", "assistant"}


async def test_the_prompt_carries_the_memory_only_when_it_stays_here(
    service: MemoryService,
) -> None:
    await service.add("My sister Clara lives in Rome")
    turn = await begin_turn(service, _user("Where does Clara live?"), "c", source="chat")
    assert turn is not None
    job = GenerationJob(messages=tuple(_user("Where does Clara live?")), max_tokens=64)

    local = preparer(turn)(job, 2048, True)
    assert local.messages is not None and "Clara lives in Rome" in local.messages[0]["content"]
    assert turn.used and "used=" in turn.header()

    remote = preparer(turn)(job, 2048, False)
    assert remote.messages == job.messages  # not a word of memory leaves the machine
    assert turn.withheld and turn.used == () and turn.header().startswith("withheld")
    assert turn.report()["used"] == []


async def test_a_long_conversation_is_fitted_without_cutting_messages(
    service: MemoryService,
) -> None:
    history = [{"role": "system", "content": "Be brief."}]
    for i in range(40):
        history += [{"role": "user", "content": f"question {i} " * 30},
                    {"role": "assistant", "content": f"answer {i} " * 30}]  # fmt: skip
    history += _user("final question")
    turn = await begin_turn(service, history, "c", source="chat")
    assert turn is not None
    job = GenerationJob(messages=tuple(history), max_tokens=128)
    fitted = preparer(turn)(job, 1024, True).messages
    assert fitted is not None and fitted[0]["role"] == "system"
    assert fitted[-1]["content"] == "final question" and turn.dropped > 0
    originals = [m["content"] for m in history]
    assert all(m["content"] in originals for m in fitted[1:])


async def test_event_reminders_fire_on_the_topic_and_not_on_their_own_request(
    service: MemoryService,
) -> None:
    request = "Next time I talk about the trip, remind me to renew my passport"
    setting = await begin_turn(service, _user(request), "c", source="chat")
    assert setting is not None and setting.fired == []
    assert setting.learned is not None and setting.learned.reminder is not None
    unrelated = await begin_turn(
        service, _user("What's a good pancake recipe?"), "c", source="chat"
    )
    assert unrelated is not None and unrelated.fired == []
    hit = await begin_turn(
        service, _user("We booked flights for the trip to Osaka"), "c", source="chat"
    )
    assert hit is not None and [r.text for r in hit.fired] == ["renew my passport"]
    again = await begin_turn(service, _user("More about the trip"), "c", source="chat")
    assert again is not None and again.fired == []  # exactly once


async def test_the_watch_fires_time_reminders_within_a_second(tmp_path: Path) -> None:
    hub = MemoryHub(AriaPaths(tmp_path), FakeEmbedder())
    service = await hub.service(LOCAL_USER)
    due = time.time() + 0.4
    service.store.reminders.add(
        text="check the oven", request="t", trigger=TriggerKind.TIME, now=time.time(), due_at=due
    )
    shown: list[tuple[Reminder, float]] = []

    async def show(_: str, fired: list[Reminder]) -> None:
        shown.extend((r, time.time()) for r in fired)

    with anyio.move_on_after(1.6):
        await watch_reminders(hub, lambda: [LOCAL_USER], show)
    hub.close()
    assert [r.text for r, _ in shown] == ["check the oven"]
    [(reminder, seen)] = shown
    assert reminder.fired_at is not None and reminder.fired_at - due < 1.0 and seen - due < 1.0


async def test_past_questions_are_not_recalled_as_if_they_were_facts(
    service: MemoryService,
) -> None:
    await service.add("Where does my sister Clara live?", kind=MemoryKind.EPISODIC, role="user")
    await service.add("My sister Clara lives in Rome")
    turn = await begin_turn(service, _user("Tell me about my sister Clara"), "c", source="chat")
    assert turn is not None
    assert [m.text for m in turn.recalled] == ["My sister Clara lives in Rome"]
