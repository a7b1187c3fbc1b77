"""A real worker decoding several requests in one batch: joining, prefix reuse, cancel, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aria.backends import GenerationJob, GrammarSpec, WorkerLaunch
from aria.backends.process import WorkerProcess
from aria.backends.protocol import WorkerInfo
from aria.convert.synthetic_vocab import build_vocab

pytestmark = pytest.mark.anyio

Worker = tuple[WorkerProcess, WorkerInfo]

SYSTEM = {"role": "system", "content": "you are a helpful model " * 20}
NO_END = {2: -100.0, 4: -100.0}  # </s> and <|im_end|>: generate until a limit


def chat(text: str, **options: Any) -> GenerationJob:
    return GenerationJob(
        messages=(SYSTEM, {"role": "user", "content": text}),
        temperature=0.0,
        logit_bias=NO_END,
        **options,
    )


def forced(word: str, tokens: int) -> GenerationJob:
    """A job that repeats ``word`` (a logit bias no other token can beat)."""
    bias = {build_vocab().id_of("\u2581" + word): 100.0}
    return GenerationJob(prompt=f"say {word}", max_tokens=tokens, temperature=0.0, logit_bias=bias)


@pytest.fixture
async def worker(tiny_gguf: Path, tmp_path: Path) -> AsyncIterator[Worker]:
    launch = WorkerLaunch(model_path=str(tiny_gguf), n_ctx=512, threads=1, parallel=4)
    process = await WorkerProcess.spawn(launch, tmp_path / "worker.log")
    info = await process.handshake(120)
    yield process, info
    await process.stop()


async def submit(process: WorkerProcess, jobs: dict[int, GenerationJob]) -> None:
    for request_id, job in jobs.items():
        await process.send({"op": "generate", "id": request_id, "job": job.to_wire()})


async def collect(
    process: WorkerProcess, ids: set[int], *, cancel: dict[int, int] | None = None
) -> tuple[dict[int, str], dict[int, dict[str, Any]], list[tuple[int, str]]]:
    """Texts and final events of ``ids``, and (request id, event) of every message in
    order; ``cancel`` maps a request to the number of pieces after which it is cancelled."""
    texts = {request_id: "" for request_id in ids}
    pieces = dict.fromkeys(ids, 0)
    ends: dict[int, dict[str, Any]] = {}
    order: list[tuple[int, str]] = []
    while len(ends) < len(ids):
        message = await process.receive()
        request_id = message["id"]
        order.append((request_id, message["ev"]))
        if message["ev"] == "tok":
            texts[request_id] += message["text"]
            pieces[request_id] += 1
            if cancel and pieces[request_id] == cancel.get(request_id):
                await process.send({"op": "cancel", "id": request_id})
        else:
            ends[request_id] = message
    return texts, ends, order


async def test_the_worker_reports_its_slots_and_their_kv_cache(worker: Worker) -> None:
    _, info = worker
    assert info.slots == 4 and info.n_ctx == 512
    assert info.kv_bytes > 0 and info.kv_bytes % (4 * 512) == 0


async def test_requests_decode_together_and_each_gets_its_own_tokens(worker: Worker) -> None:
    process, _ = worker
    words = ["the", "and", "was", "that", "with", "from"]  # six requests, four slots
    await submit(process, {n: forced(word, 30) for n, word in enumerate(words)})
    texts, ends, order = await collect(process, set(range(6)))
    for n, word in enumerate(words):
        assert texts[n].split() == [word] * 30
        assert ends[n]["finish_reason"] == "length" and ends[n]["completion_tokens"] == 30
    # Decoded together: the first four all produce before any of them ends (a loaded
    # machine may let one start a few steps early); the last two join when slots free up.
    first_end = min(order.index((n, "done")) for n in range(4))
    assert all((n, "tok") in order[:first_end] for n in range(4))
    assert min(order.index((n, "tok")) for n in (4, 5)) > first_end


async def test_a_repeated_prompt_reuses_the_cached_prefix(worker: Worker) -> None:
    process, _ = worker
    await submit(process, {1: chat("first question", max_tokens=8)})
    _, first, _ = await collect(process, {1})
    await submit(process, {2: chat("first question", max_tokens=8)})
    _, again, _ = await collect(process, {2})
    prompt = first[1]["prompt_tokens"]
    assert first[1]["cached_tokens"] == 0
    assert again[2]["cached_tokens"] == prompt - 1  # all but the last prompt token
    await submit(process, {3: chat("another question", max_tokens=8)})
    _, other, _ = await collect(process, {3})
    assert 20 < other[3]["cached_tokens"] < prompt  # the shared system prompt


async def test_a_continuing_chat_reuses_its_earlier_turn(worker: Worker) -> None:
    process, _ = worker
    turn = chat("hello there", max_tokens=6)
    await submit(process, {1: turn})
    texts, first, _ = await collect(process, {1})
    assert turn.messages is not None
    follow = GenerationJob(
        messages=(
            *turn.messages,
            {"role": "assistant", "content": texts[1]},
            {"role": "user", "content": "and then?"},
        ),
        max_tokens=4,
        temperature=0.0,
    )
    await submit(process, {2: follow})
    _, second, _ = await collect(process, {2})
    assert second[2]["cached_tokens"] >= first[1]["prompt_tokens"]


async def test_cancelling_one_request_leaves_the_others_untouched(worker: Worker) -> None:
    process, _ = worker
    words = ["the", "and", "was", "that"]
    await submit(process, {n: forced(word, 40) for n, word in enumerate(words)})
    texts, ends, _ = await collect(process, set(range(4)), cancel={2: 3})
    assert ends[2]["finish_reason"] == "cancelled" and ends[2]["completion_tokens"] < 40
    for n in (0, 1, 3):
        assert texts[n].split() == [words[n]] * 40 and ends[n]["finish_reason"] == "length"
    # The cancelled request's slot (and its cells) serve the next request at once.
    await submit(process, {n: forced("which", 5) for n in range(10, 14)})
    more, _, _ = await collect(process, set(range(10, 14)))
    assert all(text.split() == ["which"] * 5 for text in more.values())


async def test_a_request_cancelled_before_it_joined_ends_at_once(worker: Worker) -> None:
    process, _ = worker
    await submit(process, {n: forced("the", 50) for n in range(5)})  # four slots
    await process.send({"op": "cancel", "id": 4})
    _, ends, _ = await collect(process, set(range(5)))
    assert ends[4]["finish_reason"] == "cancelled" and ends[4]["completion_tokens"] == 0
    assert all(ends[n]["completion_tokens"] == 50 for n in range(4))


async def test_a_request_at_the_context_limit_ends_while_the_others_continue(
    worker: Worker,
) -> None:
    process, info = worker
    unbounded = chat("go on forever")  # max_tokens None: until the window is full
    await submit(process, {1: unbounded, 2: forced("and", 420), 3: forced("the", 420)})
    texts, ends, order = await collect(process, {1, 2, 3})
    assert ends[1]["finish_reason"] == "length"
    assert ends[1]["prompt_tokens"] + ends[1]["completion_tokens"] == info.n_ctx
    after = order[order.index((1, "done")) :]
    assert after.count((2, "tok")) > 10  # the others kept decoding after it ended
    assert texts[2].split() == ["and"] * 420 and texts[3].split() == ["the"] * 420


async def test_grammar_and_free_requests_share_a_batch(worker: Worker) -> None:
    process, _ = worker
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    jobs = {
        1: GenerationJob(
            prompt="a person:",
            max_tokens=120,
            temperature=0.0,
            grammar=GrammarSpec(kind="json_schema", schema=schema),
        ),
        2: forced("the", 60),
        3: GenerationJob(prompt="hello", max_tokens=30, temperature=1.0, seed=7),
    }
    await submit(process, jobs)
    texts, ends, _ = await collect(process, {1, 2, 3})
    answer = json.loads(texts[1])
    assert set(answer) == {"name", "age"} and ends[1]["finish_reason"] == "stop"
    assert texts[2].split() == ["the"] * 60
    assert ends[3]["completion_tokens"] == 30


async def test_a_refused_request_does_not_disturb_the_running_ones(worker: Worker) -> None:
    process, _ = worker
    await submit(process, {1: forced("the", 40)})
    bad = GenerationJob(prompt="x", max_tokens=10_000)  # beyond the window
    await process.send({"op": "generate", "id": 2, "job": bad.to_wire()})
    texts, ends, _ = await collect(process, {1, 2})
    assert ends[2]["ev"] == "error" and ends[2]["code"] == "context_length_exceeded"
    assert texts[1].split() == ["the"] * 40
