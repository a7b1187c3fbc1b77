"""A backend killed mid-stream, many concurrent streams, clients that walk away."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from aria.convert.synthetic_vocab import build_vocab
from tests.api.conftest import Server

STORY: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me a long story"}]
LONG: dict[str, Any] = {
    "model": "slow",
    "max_tokens": 2000,
    "temperature": 0,
    "stream": True,
    "messages": STORY,
}


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def backend(server: Server, model: str) -> dict[str, Any]:
    health = server.http().get("/health").json()
    return next(b for b in health["backends"] if b["model"] == model)


def test_sigkill_mid_stream_gives_an_error_and_the_server_recovers(server: Server) -> None:
    client = server.client()
    stream = client.chat.completions.create(
        model="slow", max_tokens=2000, temperature=0, stream=True, messages=STORY
    )
    received = 0
    with pytest.raises(openai.APIError, match="backend"):
        for _chunk in stream:
            received += 1
            if received == 3:
                pid = server.node.dispatcher.pid_of("slow")  # type: ignore[arg-type]
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
    assert received >= 3
    assert server.http().get("/health").json()["status"] == "ok"
    reply = client.chat.completions.create(model="slow", max_tokens=5, messages=STORY)
    assert reply.choices[0].message.content
    assert backend(server, "slow")["pid"] != pid


def test_client_disconnect_cancels_the_generation(server: Server) -> None:
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=LONG) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        assert backend(server, "slow")["state"] == "busy"
    # 2000 tokens would keep the backend busy for many seconds: it must be free at once.
    wait_until(lambda: backend(server, "slow")["state"] == "ready", timeout=10)
    assert backend(server, "slow")["queued"] == 0


def test_eight_concurrent_streams_complete_uncorrupted(server: Server) -> None:
    """Eight streams decoded in one batch: each gets its own tokens and only those (a
    logit bias makes every stream repeat its own word, so a mixed-up token shows)."""
    words = ["the", "and", "was", "that", "with", "from", "which", "would"]
    vocab = build_vocab()

    def ask(word: str) -> str:
        chunks = server.client().completions.create(
            model="tiny",
            prompt=f"say {word}",
            max_tokens=40,
            temperature=0,
            stream=True,
            logit_bias={str(vocab.id_of("\u2581" + word)): 100},
        )
        return "".join(c.choices[0].text for c in chunks if c.choices)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, words))
    for word, answer in zip(words, answers, strict=True):
        assert answer.split() == [word] * 40


def test_queue_depth_is_visible_while_requests_decode_together(server: Server) -> None:
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=LONG) as first:
        lines = first.iter_lines()  # kept: dropping the iterator would close the stream
        next(lines)
        with ThreadPoolExecutor(max_workers=2) as pool:
            others = [
                pool.submit(
                    lambda: server.client().chat.completions.create(
                        model="slow", max_tokens=2000, messages=STORY
                    )
                )
                for _ in range(2)
            ]
            wait_until(lambda: backend(server, "slow")["active"] == 3)
            metrics = server.http().get("/metrics").text
            assert 'aria_backend_queue_depth{model="slow"} 3.0' in metrics
            assert 'aria_backend_active_requests{model="slow"} 3.0' in metrics
            assert 'aria_backend_slots{model="slow"} 8.0' in metrics
            health = backend(server, "slow")
            assert health["slots"] == 8 and health["kv_cache_bytes"] > 0
            first.close()
            for future in others:
                assert future.result(timeout=120).choices[0].message.content is not None


def test_streamed_error_event_shape(server: Server) -> None:
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=LONG) as response:
        lines = response.iter_lines()
        next(lines)
        os.kill(server.node.dispatcher.pid_of("slow"), signal.SIGKILL)  # type: ignore[arg-type]
        events = [line for line in lines if line.startswith("data: ")]
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert error["code"] == "backend_crashed" and error["type"] == "server_error"
    assert "SIGKILL" in error["message"]
