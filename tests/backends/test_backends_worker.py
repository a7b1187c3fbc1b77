"""A real worker process around llama.cpp, driven over its line protocol."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest

from aria.backends import GenerationJob, GrammarSpec, WorkerLaunch
from aria.backends.process import WorkerProcess
from aria.backends.protocol import WorkerInfo, error_from_wire
from aria.errors import AriaError, BackendUnavailable, ContextLengthExceeded, InvalidRequest

pytestmark = pytest.mark.anyio

HELLO = ({"role": "user", "content": "hello there"},)


@pytest.fixture
async def worker(
    tiny_gguf: Path, tmp_path: Path
) -> AsyncIterator[tuple[WorkerProcess, WorkerInfo]]:
    launch = WorkerLaunch(model_path=str(tiny_gguf), n_ctx=1024, threads=1)
    process = await WorkerProcess.spawn(launch, tmp_path / "worker.log")
    info = await process.handshake(120)
    yield process, info
    await process.stop()


async def run(
    process: WorkerProcess, request_id: int, job: GenerationJob, cancel_after: int | None = None
) -> tuple[str, dict]:
    await process.send({"op": "generate", "id": request_id, "job": job.to_wire()})
    pieces: list[str] = []
    while True:
        message = await process.receive()
        assert message["id"] == request_id
        if message["ev"] == "tok":
            pieces.append(message["text"])
            if cancel_after is not None and len(pieces) == cancel_after:
                await process.send({"op": "cancel", "id": request_id})
            continue
        if message["ev"] == "error":
            raise error_from_wire(message)
        return "".join(pieces), message


async def test_loads_and_reports_the_model(worker: tuple[WorkerProcess, WorkerInfo]) -> None:
    _, info = worker
    assert info.engine == "llama.cpp"
    assert info.n_ctx == 1024 and info.chat_template


async def test_greedy_generation_is_deterministic_and_counted(worker) -> None:
    process, _ = worker
    job = GenerationJob(messages=HELLO, max_tokens=12, temperature=0.0)
    first, done = await run(process, 1, job)
    second, _ = await run(process, 2, job)
    assert first == second and first
    assert done["finish_reason"] == "length"
    assert done["completion_tokens"] == 12
    assert done["prompt_tokens"] > 3


async def test_seed_makes_sampling_reproducible(worker) -> None:
    process, _ = worker
    job = GenerationJob(messages=HELLO, max_tokens=16, temperature=1.0, seed=1234)
    assert (await run(process, 1, job))[0] == (await run(process, 2, job))[0]


async def test_stop_sequence_ends_before_it(worker) -> None:
    process, _ = worker
    full, _ = await run(process, 1, GenerationJob(messages=HELLO, max_tokens=40, temperature=0.0))
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut, done = await run(
        process, 2, GenerationJob(messages=HELLO, max_tokens=40, temperature=0.0, stop=(stop,))
    )
    assert cut == full[: full.index(stop)]
    assert done["finish_reason"] == "stop"


async def test_cancel_stops_between_tokens(worker) -> None:
    process, _ = worker
    job = GenerationJob(messages=HELLO, max_tokens=400, temperature=0.0)
    _, done = await run(process, 1, job, cancel_after=2)
    assert done["finish_reason"] == "cancelled"
    assert done["completion_tokens"] < 400
    _, again = await run(process, 2, GenerationJob(messages=HELLO, max_tokens=3))
    assert again["completion_tokens"] == 3


async def test_refusals_leave_the_worker_serving(worker) -> None:
    process, _ = worker
    with pytest.raises(ContextLengthExceeded, match="context window is 1024"):
        await run(process, 1, GenerationJob(prompt="word " * 1200, max_tokens=4))
    with pytest.raises(ContextLengthExceeded, match="max_tokens"):
        await run(process, 2, GenerationJob(messages=HELLO, max_tokens=1200))
    with pytest.raises(InvalidRequest, match="logit_bias"):
        await run(process, 3, GenerationJob(messages=HELLO, logit_bias={10**7: 1.0}))
    with pytest.raises(InvalidRequest, match="tool_choice"):
        grammar = GrammarSpec(
            kind="tools", tools=({"function": {"name": "f"}},), mode="named", name="g"
        )
        await run(process, 4, GenerationJob(messages=HELLO, grammar=grammar))
    text, _ = await run(process, 5, GenerationJob(messages=HELLO, max_tokens=2))
    assert text


async def test_json_schema_output_always_validates(worker) -> None:
    process, _ = worker
    schema = {
        "type": "object",
        "properties": {"city": {"enum": ["Paris", "Rome"]}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    for seed in range(3):
        job = GenerationJob(
            messages=HELLO,
            max_tokens=200,
            temperature=0.8,
            seed=seed,
            grammar=GrammarSpec(kind="json_schema", schema=schema),
        )
        text, done = await run(process, seed + 1, job)
        assert done["finish_reason"] == "stop"
        jsonschema.validate(json.loads(text), schema)


async def test_tool_grammar_forces_a_call(worker) -> None:
    process, _ = worker
    tools = (
        {
            "type": "function",
            "function": {
                "name": "pick",
                "parameters": {
                    "type": "object",
                    "properties": {"n": {"enum": [1, 2]}},
                    "required": ["n"],
                    "additionalProperties": False,
                },
            },
        },
    )
    job = GenerationJob(
        messages=HELLO,
        tools=tools,
        max_tokens=200,
        temperature=0.0,
        grammar=GrammarSpec(kind="tools", tools=tools, mode="required", single=True),
    )
    text, _ = await run(process, 1, job)
    body = text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    assert json.loads(body)["name"] == "pick"


async def test_embeddings_are_normalized(worker) -> None:
    process, info = worker
    await process.send({"op": "embed", "id": 9, "input": ["alpha", "beta gamma"]})
    message = await process.receive()
    assert message["ev"] == "emb" and len(message["data"]) == 2
    for vector in message["data"]:
        assert len(vector) == info.n_embd
        assert abs(sum(v * v for v in vector) - 1.0) < 1e-3
    assert message["prompt_tokens"] >= 3


async def test_a_file_that_is_not_a_model_fails_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    process = await WorkerProcess.spawn(
        WorkerLaunch(str(bad), n_ctx=256, threads=1), tmp_path / "bad.log"
    )
    with pytest.raises(BackendUnavailable) as caught:
        await process.handshake(60)
    assert isinstance(caught.value, AriaError)
    await process.kill()
    assert process.returncode is not None
