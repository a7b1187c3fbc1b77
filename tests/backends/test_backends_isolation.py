"""Isolated requests (work served for a peer, spot checks) decode as if they were alone.

A peer re-executes a sampled greedy answer to check it (aria/p2p/spotchecks.py) and
counts any difference as cheating, while batching moves the last bits of the logits and,
at near ties, the text. So a request marked ``isolated`` must give a solo run's text
token for token while other streams decode on the same backend, and on a backend with
one slot as on one with many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aria.backends import GenerationJob, WorkerLaunch
from aria.backends.engine import Ended, Failure, Piece
from aria.backends.llama_engine import LlamaEngine

# Beside others, 3 of these 12 plain (not isolated) requests part from their solo text on
# this model, 6 of 12 on SmolLM2-135M (AMD EPYC): the test is not a tautology.
PROMPTS = [
    "Write a short poem about the sea.",
    "Explain trains to a child.",
    "List three facts about bees.",
    "Describe glaciers in one paragraph.",
    *(f"Describe {topic} in one paragraph." for topic in ("the moon", "tea", "maps", "snow")),
    *(f"Describe {topic} in one paragraph." for topic in ("wolves", "coral", "clocks", "paper")),
]
OTHERS = ["Tell me about rain.", "What is bread?", "Name a river.", "Why do owls hoot?", "Hi!"]
NO_END = {2: -100.0, 4: -100.0}  # </s> and <|im_end|>: generate until the limit


def chat(text: str, tokens: int, *, isolated: bool = False) -> GenerationJob:
    return GenerationJob(
        messages=({"role": "user", "content": text},),
        temperature=0.0,
        max_tokens=tokens,
        logit_bias=NO_END,
        isolated=isolated,
    )


def engine(model: Path, parallel: int, kv_budget: int | None = None) -> Iterator[LlamaEngine]:
    launch = WorkerLaunch(
        model_path=str(model), n_ctx=512, threads=1, parallel=parallel, kv_budget_bytes=kv_budget
    )
    built = LlamaEngine(launch)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def busy_engine(tiny_gguf: Path) -> Iterator[LlamaEngine]:
    yield from engine(tiny_gguf, 6)


@pytest.fixture
def one_slot_engine(tiny_gguf: Path) -> Iterator[LlamaEngine]:
    yield from engine(tiny_gguf, 1)


def drain(built: LlamaEngine, texts: dict[int, str], *, steps: int | None = None) -> None:
    """Step (``steps`` times, or until idle), adding each request's pieces to ``texts``."""
    done = 0
    while built.has_work() and (steps is None or done < steps):
        for event in built.step():
            if isinstance(event, Piece):
                texts[event.request_id] = texts.get(event.request_id, "") + event.text
            elif isinstance(event, Failure):
                raise AssertionError(f"request {event.request_id} failed: {event.error}")
            elif isinstance(event, Ended):
                assert event.result.finish_reason == "length"
        done += 1


def alone(built: LlamaEngine, request_id: int, job: GenerationJob) -> str:
    texts: dict[int, str] = {}
    built.submit(request_id, job)
    drain(built, texts)
    return texts[request_id]


def beside_others(built: LlamaEngine, request_id: int, job: GenerationJob) -> str:
    """``job`` joins five streams already decoding; two more join while it runs."""
    texts: dict[int, str] = {}
    for n, other in enumerate(OTHERS[:4]):
        built.submit(1000 * request_id + n, chat(other, 64))
    drain(built, texts, steps=3)
    built.submit(request_id, job)
    drain(built, texts, steps=5)
    built.submit(1000 * request_id + 4, chat(OTHERS[4], 16))
    drain(built, texts)
    assert len(texts) == 6 and all(texts.values())
    return texts[request_id]


def test_an_isolated_request_decodes_as_if_alone(
    busy_engine: LlamaEngine, one_slot_engine: LlamaEngine
) -> None:
    for n, prompt in enumerate(PROMPTS, start=1):
        job = chat(prompt, 40, isolated=True)
        solo = alone(one_slot_engine, n, job)
        assert len(solo) > 40
        assert alone(busy_engine, n, job) == solo, prompt
        assert beside_others(busy_engine, 100 + n, job) == solo, prompt
        # The slot it used keeps nothing for reuse, and a plain request still reuses.
        assert alone(busy_engine, 200 + n, chat(prompt, 8)) != ""


def test_an_isolated_request_reuses_no_prefix_and_waits_for_the_lane(
    busy_engine: LlamaEngine,
) -> None:
    alone(busy_engine, 1, chat(PROMPTS[0], 4))
    busy_engine.submit(2, chat(PROMPTS[0], 4, isolated=True))
    busy_engine.submit(3, chat(PROMPTS[1], 4, isolated=True))
    ends: dict[int, Ended] = {}
    order: list[int] = []
    while busy_engine.has_work():
        for event in busy_engine.step():
            if isinstance(event, Piece):
                order.append(event.request_id)
            elif isinstance(event, Ended):
                ends[event.request_id] = event
    assert ends[2].result.cached_tokens == 0 and ends[3].result.cached_tokens == 0
    assert order.index(3) > max(i for i, request in enumerate(order) if request == 2)
    assert busy_engine.info.slots == 6


def test_the_lane_takes_its_window_from_the_kv_budget(
    tiny_gguf: Path, busy_engine: LlamaEngine, one_slot_engine: LlamaEngine
) -> None:
    window = one_slot_engine.info.kv_bytes  # one slot: no lane of its own
    assert busy_engine.info.kv_bytes == 7 * window  # six slots and the lane
    for built in engine(tiny_gguf, 6, kv_budget=3 * window):
        assert built.info.slots == 2 and built.info.kv_bytes == 3 * window
