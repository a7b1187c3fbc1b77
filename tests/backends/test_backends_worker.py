"""A real worker process around llama.cpp, driven over its line protocol."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aria.backends import GenerationJob, GrammarSpec, WorkerLaunch
from aria.backends.process import WorkerProcess
from aria.backends.protocol import WorkerInfo, error_from_wire
from aria.errors import (
    AriaError,
    BackendUnavailable,
    ContextLengthExceeded,
    InvalidRequest,
    RequestFailed,
)

pytestmark = pytest.mark.anyio

HELLO = ({"role": "user", "content": "hello there"},)

Worker = tuple[WorkerProcess, WorkerInfo]


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
) -> tuple[str, dict[str, Any]]:
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


async def test_greedy_generation_is_deterministic_and_counted(worker: Worker) -> None:
    process, _ = worker
    job = GenerationJob(messages=HELLO, max_tokens=12, temperature=0.0)
    first, done = await run(process, 1, job)
    second, _ = await run(process, 2, job)
    assert first == second and first
    assert done["finish_reason"] == "length"
    assert done["completion_tokens"] == 12
    assert done["prompt_tokens"] > 3


async def test_seed_makes_sampling_reproducible(worker: Worker) -> None:
    process, _ = worker
    job = GenerationJob(messages=HELLO, max_tokens=16, temperature=1.0, seed=1234)
    assert (await run(process, 1, job))[0] == (await run(process, 2, job))[0]


async def test_stop_sequence_ends_before_it(worker: Worker) -> None:
    process, _ = worker
    full, _ = await run(process, 1, GenerationJob(messages=HELLO, max_tokens=40, temperature=0.0))
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut, done = await run(
        process, 2, GenerationJob(messages=HELLO, max_tokens=40, temperature=0.0, stop=(stop,))
    )
    assert cut == full[: full.index(stop)]
    assert done["finish_reason"] == "stop"


async def test_cancel_stops_between_tokens(worker: Worker) -> None:
    process, _ = worker
    job = GenerationJob(messages=HELLO, max_tokens=400, temperature=0.0)
    _, done = await run(process, 1, job, cancel_after=2)
    assert done["finish_reason"] == "cancelled"
    assert done["completion_tokens"] < 400
    _, again = await run(process, 2, GenerationJob(messages=HELLO, max_tokens=3))
    assert again["completion_tokens"] == 3


async def test_refusals_leave_the_worker_serving(worker: Worker) -> None:
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


async def test_json_schema_output_always_validates(worker: Worker) -> None:
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


async def test_tool_grammar_forces_a_call(worker: Worker) -> None:
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


async def test_embeddings_are_normalized(worker: Worker) -> None:
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


async def test_a_request_specific_failure_leaves_the_worker_serving(worker: Worker) -> None:
    process, _ = worker
    # A stop "sequence" that is not a string breaks the text assembler at the first token:
    # an unexpected exception inside one request, not an engine failure.
    broken = GenerationJob(messages=HELLO, max_tokens=4, stop=(1,))  # type: ignore[arg-type]
    with pytest.raises(RequestFailed, match="TypeError"):
        await run(process, 1, broken)
    await process.send({"op": "generate", "id": 2, "job": {"prompt": None, "messages": 7}})
    message = await process.receive()
    assert message["ev"] == "error" and message["code"] == "invalid_request"
    text, _ = await run(process, 3, GenerationJob(messages=HELLO, max_tokens=2))
    assert text and process.returncode is None


def _address_space_limit(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            value = line.split()[3]
            return None if value == "unlimited" else int(value)
    return None


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_the_address_space_is_capped_once_the_model_is_loaded(
    worker: Worker, tiny_gguf: Path
) -> None:
    process, _ = worker
    limit = _address_space_limit(process.pid)
    assert limit is not None
    size = int(Path(f"/proc/{process.pid}/status").read_text().split("VmSize:")[1].split()[0])
    headroom = limit - size * 1024 - tiny_gguf.stat().st_size
    assert 1.5 * 2**30 < headroom < 2.5 * 2**30  # the default 2 GiB, less what was mapped since
    await process.send({"op": "embed", "id": 1, "input": ["a text"] * 4})  # fits under it
    assert (await process.receive())["ev"] == "emb"


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc")
async def test_an_allocation_past_the_cap_fails_one_request_not_the_worker(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    launch = WorkerLaunch(
        model_path=str(tiny_gguf), n_ctx=1024, threads=1, address_space_headroom_bytes=32 << 20
    )
    process = await WorkerProcess.spawn(launch, tmp_path / "worker.log")
    try:
        await process.handshake(120)
        # The embedding context needs far more than 32 MiB: that request fails, alone.
        await process.send({"op": "embed", "id": 1, "input": ["hello"]})
        failed = await process.receive()
        assert failed["ev"] == "error" and failed["code"] == "request_failed"
        text, _ = await run(process, 2, GenerationJob(messages=HELLO, max_tokens=3))
        assert text and process.returncode is None
    finally:
        await process.stop()


async def test_an_embedding_batch_stops_between_chunks_when_cancelled(worker: Worker) -> None:
    process, _ = worker
    texts = [f"sentence number {i} with a few more words in it" for i in range(2048)]
    await process.send({"op": "embed", "id": 7, "input": texts})
    await process.send({"op": "cancel", "id": 7})
    assert (await process.receive()) == {"id": 7, "ev": "cancelled"}
    await process.send({"op": "embed", "id": 8, "input": ["still serving"]})
    assert (await process.receive())["ev"] == "emb"
