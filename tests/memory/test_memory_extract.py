"""Fact extraction by a capable local model: only when capable, only on this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from aria.backends import DoneEvent, GenerationJob, TokenEvent
from aria.catalog import load_catalog
from aria.convert import write_llama_gguf
from aria.errors import MemoryDisabled
from aria.memory import MemoryKind, MemoryService, begin_turn, can_extract, learn_from_answer
from aria.memory.extract import _here_only, extract_facts
from tests.api.conftest import make_node

pytestmark = pytest.mark.anyio


def test_only_models_of_the_configured_size_extract() -> None:
    catalog = load_catalog()
    assert not can_extract(catalog.get("SmolLM2-135M-Instruct"), 1.0)
    assert can_extract(catalog.get("Qwen3-4B"), 1.0)
    assert not can_extract(catalog.get("all-MiniLM-L6-v2"), 0.001)  # not a chat model


def test_extraction_never_runs_split_over_peers() -> None:
    job = GenerationJob(messages=({"role": "user", "content": "x"},))
    assert _here_only(job, 2048, True) is job
    with pytest.raises(MemoryDisabled):
        _here_only(job, 2048, False)


class _Answering:
    """A node whose model answers ``reply`` (the JSON a capable model writes)."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.jobs: list[GenerationJob] = []

    async def generate(self, job: GenerationJob, model: str, **kwargs: Any) -> Any:
        self.jobs.append(job)
        reply = self.reply

        class Served:
            async def events(self) -> AsyncIterator[TokenEvent | DoneEvent]:
                yield TokenEvent(reply)
                yield DoneEvent("stop", 1, 1)

        @asynccontextmanager
        async def served() -> AsyncIterator[Served]:
            yield Served()

        return served()


async def test_extracted_facts_are_remembered_and_linked_to_their_message(
    service: MemoryService,
) -> None:
    turn = await begin_turn(service, [{"role": "user", "content": "We moved to Oslo in May"}],
                            "c", source="test")  # fmt: skip
    assert turn is not None
    node = _Answering('{"facts": ["I live in Oslo", "  "]}')
    learned = await learn_from_answer(node, service, turn, "Qwen3-4B")  # type: ignore[arg-type]
    assert [item.memory.text for item in learned if item.memory] == ["I live in Oslo"]
    [fact] = service.store.select(kinds=[MemoryKind.SEMANTIC])
    assert fact.source == "extracted" and fact.origin == turn.turn_id and fact.slot == "residence"
    job = node.jobs[0]
    assert job.grammar is not None and job.grammar.kind == "json_schema" and job.temperature == 0
    assert await learn_from_answer(_Answering("{not json"), service, turn, "m") == []  # type: ignore[arg-type]


async def test_the_grammar_constrained_answer_of_a_real_model_parses(tmp_path: Path) -> None:
    node = make_node(tmp_path / "home", {"tiny": write_llama_gguf(tmp_path / "t.gguf", n_ctx=2048)})
    async with node.running():
        facts = await extract_facts(node, "tiny", "I moved to Oslo")
    assert isinstance(facts, list) and all(isinstance(f, str) and f for f in facts)
