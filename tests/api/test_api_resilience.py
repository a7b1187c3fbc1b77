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
    prompts = [f"question number {i}: what is {i} plus {i}?" for i in range(8)]

    def ask(prompt: str, stream: bool) -> str:
        client = server.client()
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
        if not stream:
            reply = client.chat.completions.create(
                model="tiny", messages=messages, max_tokens=40, temperature=0
            )
            return reply.choices[0].message.content or ""
        chunks = client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=40, temperature=0, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    sequential = [ask(p, stream=False) for p in prompts]
    assert len(set(sequential)) > 1  # different prompts, different answers
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda p: ask(p, stream=True), prompts))
    assert concurrent == sequential


def test_queue_depth_is_visible_while_requests_wait(server: Server) -> None:
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=LONG) as first:
        lines = first.iter_lines()  # kept: dropping the iterator would close the stream
        next(lines)
        with ThreadPoolExecutor(max_workers=2) as pool:
            waiting = [
                pool.submit(
                    lambda: server.client().chat.completions.create(
                        model="slow", max_tokens=2, messages=STORY
                    )
                )
                for _ in range(2)
            ]
            wait_until(lambda: backend(server, "slow")["queued"] == 3)
            metrics = server.http().get("/metrics").text
            assert 'aria_backend_queue_depth{model="slow"} 3.0' in metrics
            first.close()
            for future in waiting:
                assert future.result(timeout=60).choices[0].message.content is not None


def test_streamed_error_event_shape(server: Server) -> None:
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=LONG) as response:
        lines = response.iter_lines()
        next(lines)
        os.kill(server.node.dispatcher.pid_of("slow"), signal.SIGKILL)  # type: ignore[arg-type]
        events = [line for line in lines if line.startswith("data: ")]
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert error["code"] == "backend_crashed" and error["type"] == "server_error"
    assert "SIGKILL" in error["message"]
