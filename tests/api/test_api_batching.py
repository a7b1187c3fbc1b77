"""Many clients at once through the API: one backend decodes them together.

The streams' contents are pinned with ``logit_bias`` (each stream repeats its own word)
wherever exact output is asserted: greedy text of a batched sequence may differ from
its solo run in the last bits of llama.cpp's batched kernels (see docs/batching.md),
but a token of one stream can never appear in another.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from aria.convert.synthetic_vocab import build_vocab
from tests.api.conftest import Server, make_node, running

WORDS = ["the", "and", "was", "that", "with", "from", "which", "would"]
NO_END = {"2": -100, "4": -100}
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def bias_for(word: str) -> dict[str, int]:
    return {str(build_vocab().id_of("\u2581" + word)): 100}


@pytest.fixture(scope="module")
def small_window(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Any:
    """A node whose backends have a 256-token window (the smallest the settings allow)."""
    node = make_node(
        tmp_path_factory.mktemp("window"),
        {"tiny": model_files["tiny"]},
        inference={"context_length": 256},
    )
    with running(node) as live:
        yield live


def stream_words(server: Server, word: str, tokens: int) -> tuple[list[str], str | None]:
    """Stream a completion forced to repeat ``word``: its words and finish reason."""
    chunks = server.client().completions.create(
        model="tiny",
        prompt=f"say {word}",
        max_tokens=tokens,
        temperature=0,
        stream=True,
        logit_bias=bias_for(word),
    )
    text, reason = "", None
    for chunk in chunks:
        if chunk.choices:
            text += chunk.choices[0].text
            reason = chunk.choices[0].finish_reason or reason
    return text.split(), reason


def test_sixteen_mixed_requests_at_once_all_complete_correctly(server: Server) -> None:
    """Streamed, non-streamed, tool and json_schema requests, 16 at once on one backend
    with 8 slots: 8 decode together, 8 wait for a slot."""
    client = server.client()

    def streamed(n: int) -> None:
        word = WORDS[n % len(WORDS)]
        assert stream_words(server, word, 24) == ([word] * 24, "length")

    def plain(n: int) -> None:
        word = WORDS[n % len(WORDS)]
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": f"say {word}"}],
            max_tokens=24,
            temperature=0,
            logit_bias=bias_for(word),
        )
        assert (reply.choices[0].message.content or "").split() == [word] * 24
        assert reply.usage is not None and reply.usage.completion_tokens == 24

    def tool(n: int) -> None:
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": f"weather {n}?"}],
            tools=[WEATHER],
            tool_choice="required",
            parallel_tool_calls=False,
            max_tokens=200,
            temperature=0.7,
            seed=n,
        )
        calls = reply.choices[0].message.tool_calls
        assert reply.choices[0].finish_reason == "tool_calls" and calls and len(calls) == 1
        call = calls[0]
        assert call.type == "function"
        assert json.loads(call.function.arguments)["city"] in ("Paris", "Rome")

    def schema(n: int) -> None:
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": f"a person {n}"}],
            max_tokens=300,
            temperature=0.9,
            seed=n,
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
        )
        jsonschema.validate(json.loads(reply.choices[0].message.content or ""), PERSON)

    kinds = [streamed, plain, tool, schema]
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(kinds[n % 4], n) for n in range(16)]
        for future in futures:
            future.result(timeout=300)
    (tiny,) = [b for b in server.http().get("/health").json()["backends"] if b["model"] == "tiny"]
    assert tiny["slots"] == 8 and tiny["state"] == "ready" and tiny["queued"] == 0


def test_cancelling_one_of_eight_streams_leaves_the_others_intact(server: Server) -> None:
    def keep(word: str) -> tuple[list[str], str | None]:
        return stream_words(server, word, 150)

    def leave(word: str) -> int:
        body = {
            "model": "tiny",
            "prompt": f"say {word}",
            "max_tokens": 150,
            "stream": True,
            "logit_bias": bias_for(word),
        }
        with server.http() as http, http.stream("POST", "/v1/completions", json=body) as reply:
            lines = reply.iter_lines()
            for _ in range(5):
                next(lines)
        return 5  # the client walked away after a few chunks

    before = generated(server)
    with ThreadPoolExecutor(max_workers=8) as pool:
        left = pool.submit(leave, WORDS[0])
        kept = [pool.submit(keep, word) for word in WORDS[1:]]
        assert left.result(timeout=120) == 5
        for word, future in zip(WORDS[1:], kept, strict=True):
            assert future.result(timeout=300) == ([word] * 150, "length")
    deadline = time.monotonic() + 30
    while generated(server) - before < 7 * 150:  # the cancelled one's tokens count too
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert generated(server) - before < 8 * 150  # it stopped early


def generated(server: Server) -> float:
    """Tokens generated by model ``tiny`` so far (``/metrics``)."""
    for line in server.http().get("/metrics").text.splitlines():
        if line.startswith('aria_completion_tokens_total{model="tiny"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_stream_at_the_context_limit_ends_with_length_while_others_go_on(
    small_window: Server,
) -> None:
    client = small_window.client()
    started = time.monotonic()

    def to_the_limit() -> tuple[Any, float]:
        reply = client.chat.completions.create(  # no max_tokens: until the window is full
            model="tiny",
            messages=[{"role": "user", "content": "go on and on " * 40}],
            temperature=0,
            logit_bias=NO_END,
        )
        return reply, time.monotonic() - started

    def others(word: str) -> tuple[list[str], str | None, float]:
        words, reason = stream_words(small_window, word, 200)
        return words, reason, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=3) as pool:
        limited = pool.submit(to_the_limit)
        rest = [pool.submit(others, word) for word in ("and", "the")]
        reply, limit_ended = limited.result(timeout=300)
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage is not None
        assert reply.usage.prompt_tokens + reply.usage.completion_tokens == 256
        assert reply.usage.completion_tokens < 200
        for word, future in zip(("and", "the"), rest, strict=True):
            words, reason, ended = future.result(timeout=300)
            assert words == [word] * 200 and reason == "length"
            assert ended > limit_ended  # still decoding after the limited one ended


def test_a_repeated_system_prompt_is_reported_as_cached_tokens(server: Server) -> None:
    system: ChatCompletionMessageParam = {
        "role": "system",
        "content": "you answer in one short sentence. " * 30,
    }
    client = server.client()
    usages = []
    for question in ("what is the time?", "what is the weather?"):
        reply = client.chat.completions.create(
            model="slow",
            messages=[system, {"role": "user", "content": question}],
            max_tokens=4,
            temperature=0,
        )
        assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
        usages.append(reply.usage)
    assert usages[0].prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    cached = usages[1].prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
    assert cached is not None and 150 < cached < usages[1].prompt_tokens
    metrics = server.http().get("/metrics").text
    assert 'aria_prompt_cached_tokens_total{model="slow"}' in metrics


def test_streamed_usage_carries_cached_tokens(server: Server) -> None:
    body = {
        "model": "tiny",
        "prompt": "the same prompt twice",
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usages = []
    for _ in range(2):
        with httpx.Client(base_url=server.url, timeout=60) as http:
            lines = http.post("/v1/completions", json=body).text.splitlines()
        events = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        usages.append(events[-1]["usage"])
    assert usages[1]["prompt_tokens_details"]["cached_tokens"] == usages[1]["prompt_tokens"] - 1
