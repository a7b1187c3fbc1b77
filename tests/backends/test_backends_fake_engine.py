"""The model-less engine keeps the engine contract (limits, stops, cancellation, window,
grammars, embeddings) so dispatcher and API tests can run without llama.cpp."""

from __future__ import annotations

import json
import math
from collections.abc import Generator
from pathlib import Path

import pytest

from aria.backends import GenerationJob, GrammarSpec, ToolCallParser, WorkerLaunch
from aria.backends.engine import EmbeddingCancelled, Finished
from aria.backends.fake_engine import FakeEngine
from aria.backends.sequential import SequentialEngine
from aria.backends.toolcalls import ParsedToolCall
from aria.backends.worker import open_engine
from aria.errors import BackendUnavailable, ContextLengthExceeded

HI = ({"role": "user", "content": "hi"},)


@pytest.fixture
def engine(tmp_path: Path) -> FakeEngine:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    launch = WorkerLaunch(model_path=str(model), n_ctx=512, threads=1, engine="fake")
    opened = open_engine(launch)  # served one request at a time, as the bitnet.cpp server is
    assert isinstance(opened, SequentialEngine) and opened.info.engine == "fake"
    return FakeEngine(launch)


def run(
    pieces: Generator[str, None, Finished], cancel_after: int | None = None
) -> tuple[list[str], Finished]:
    out: list[str] = []
    while True:
        try:
            out.append(next(pieces))
        except StopIteration as stop:
            return out, stop.value


def test_max_tokens_usage_and_seeded_determinism(engine: FakeEngine) -> None:
    job = GenerationJob(messages=HI, max_tokens=5, seed=7)
    first, done = run(engine.generate(job, lambda: False))
    assert len(first) == 5 and done == Finished("length", done.prompt_tokens, 5)
    assert run(engine.generate(job, lambda: False))[0] == first
    other = GenerationJob(messages=HI, max_tokens=5, seed=8)
    assert run(engine.generate(other, lambda: False))[0] != first


def test_a_stop_sequence_ends_before_it(engine: FakeEngine) -> None:
    words, _ = run(
        engine.generate(GenerationJob(messages=HI, max_tokens=20, seed=1), lambda: False)
    )
    stop = words[3].strip()
    job = GenerationJob(messages=HI, max_tokens=20, seed=1, stop=(stop,))
    pieces, done = run(engine.generate(job, lambda: False))
    assert done.finish_reason == "stop" and stop not in "".join(pieces)


def test_cancellation_stops_between_tokens(engine: FakeEngine) -> None:
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 3

    job = GenerationJob(messages=HI, max_tokens=30)
    pieces, done = run(engine.generate(job, cancelled))
    assert done.finish_reason == "cancelled" and done.completion_tokens == len(pieces) == 3


def test_the_window_is_checked_before_generating(engine: FakeEngine) -> None:
    long = GenerationJob(messages=({"role": "user", "content": "x" * 4000},), max_tokens=4)
    with pytest.raises(ContextLengthExceeded) as refused:
        next(engine.generate(long, lambda: False))
    assert refused.value.param == "messages" and refused.value.http_status == 400
    unbounded, done = run(engine.generate(GenerationJob(prompt="Once"), lambda: False))
    assert done.prompt_tokens + done.completion_tokens == 512  # until the window is full


def test_grammars_give_parseable_tool_calls_and_json(engine: FakeEngine) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"enum": ["Paris", "Rome"]}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
    calls = GenerationJob(messages=HI, tools=(tool,), grammar=GrammarSpec("tools", tools=(tool,)))
    parser = ToolCallParser()
    events = [
        e for piece in run(engine.generate(calls, lambda: False))[0] for e in parser.feed(piece)
    ]
    events += parser.finish()
    [call] = [e for e in events if isinstance(e, ParsedToolCall)]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris", "days": 1}
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    shaped = GenerationJob(messages=HI, grammar=GrammarSpec("json_schema", schema=schema))
    assert json.loads("".join(run(engine.generate(shaped, lambda: False))[0])) == {"ok": True}


def test_embeddings_are_unit_vectors_and_cancellable(engine: FakeEngine) -> None:
    result = engine.embed(["a", "b", "a"], lambda: False)
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert all(math.isclose(sum(v * v for v in vec), 1.0) for vec in result.vectors)
    with pytest.raises(EmbeddingCancelled):
        engine.embed(["a"], lambda: True)


def test_a_missing_model_file_fails_to_start(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="no such file"):
        FakeEngine(WorkerLaunch(model_path=str(tmp_path / "none"), n_ctx=64, threads=1))
