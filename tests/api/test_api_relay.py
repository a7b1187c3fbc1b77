"""The API's relay of a peer's answer, against a stand-in node on the real control
channel (a real ``ControlServer`` whose ``infer`` op plays the peer): what a peer sends
is checked and re-encoded, what the client sent is filtered, and relays are bounded."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from aria.api import peers
from aria.p2p.control import ControlServer
from tests.api.conftest import Server, make_node, running

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
CHUNK = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}


@dataclass
class StandIn:
    """What the stand-in node received, and what it answers next."""

    answers: list[list[Any]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    pause_s: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, StandIn]]:
    monkeypatch.setattr(peers, "MAX_RELAYS", 1)
    monkeypatch.setattr(peers, "RELAY_DEADLINE_S", 2.0)
    node = make_node(tmp_path, {}, consent={"use_peers": True})
    stand_in = StandIn()

    async def infer(args: dict[str, Any]) -> AsyncIterator[Any]:
        stand_in.bodies.append(args["body"])
        items = stand_in.answers.pop(0)

        async def answer() -> AsyncIterator[Any]:
            for item in items:
                if item == "wait":
                    await trio.to_thread.run_sync(stand_in.release.wait, abandon_on_cancel=True)
                    continue
                yield item
                await trio.sleep(stand_in.pause_s)

        return answer()

    stop = threading.Event()
    ready = threading.Event()

    async def main() -> None:
        control = ControlServer(node.paths, PEER, {"infer": infer}, token="t0ken")
        async with trio.open_nursery() as nursery:
            await nursery.start(control.serve)
            ready.set()
            await trio.to_thread.run_sync(stop.wait)
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        with running(node) as server:
            yield server, stand_in
    finally:
        stand_in.release.set()
        stop.set()
        thread.join(30)


def post(server: Server, body: dict[str, Any]) -> httpx.Response:
    with server.http() as http:  # closed: no idle connection delays the server's stop
        return http.post("/v1/chat/completions", json=body)


def chat(**fields: Any) -> dict[str, Any]:
    body = {"model": "far-away", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    return {**body, **fields}


def data_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def test_peer_chunks_are_re_encoded_and_the_client_body_is_filtered(
    relay: tuple[Server, StandIn],
) -> None:
    server, stand_in = relay
    spread = '{"object": "chat.completion.chunk",\n"choices": []}'  # valid JSON, raw newline
    stand_in.answers.append(
        [{"peer": PEER, "data": json.dumps(CHUNK)}, {"data": spread}, {"data": "[DONE]"}]
    )
    body = chat(user="alice@example.com", metadata={"secret": "x"}, max_tokens=5)
    response = post(server, body)
    assert response.status_code == 200 and response.headers["x-aria-served-by"] == PEER
    lines = data_lines(response.text)
    assert lines == [
        "data: " + json.dumps(CHUNK, separators=(",", ":")),
        'data: {"object":"chat.completion.chunk","choices":[]}',
        "data: [DONE]",
    ]
    forwarded = stand_in.bodies[0]
    assert "user" not in forwarded and "metadata" not in forwarded
    assert forwarded["model"] == "far-away" and forwarded["max_tokens"] == 5


@pytest.mark.parametrize(
    "second",
    [
        {"data": '{"a": 1}\n\ndata: {"injected": true}'},  # an SSE line smuggled in
        {"data": "not json"},
        {"data": "[1, 2]"},
        {"nothing": "here"},
    ],
)
def test_a_malformed_peer_chunk_ends_the_stream_with_an_error(
    relay: tuple[Server, StandIn], second: dict[str, Any]
) -> None:
    server, stand_in = relay
    stand_in.answers.append([{"peer": PEER, "data": json.dumps(CHUNK)}, second])
    response = post(server, chat())
    lines = data_lines(response.text)
    assert len(lines) == 2 and "injected" not in response.text
    assert json.loads(lines[1].removeprefix("data: "))["error"]["code"] == "peer_error"


def test_a_bad_peer_id_is_refused_before_any_header(relay: tuple[Server, StandIn]) -> None:
    server, stand_in = relay
    stand_in.answers.append([{"peer": "x\r\nx-evil: 1", "data": json.dumps(CHUNK)}])
    response = post(server, chat())
    assert response.status_code == 502 and "x-evil" not in response.headers


def test_a_relay_has_a_deadline_and_relays_are_bounded(relay: tuple[Server, StandIn]) -> None:
    server, stand_in = relay
    stand_in.answers.append([{"peer": PEER, "data": json.dumps(CHUNK)}, "wait"])
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=chat()) as slow:
        lines = slow.iter_lines()  # kept: dropping the iterator would close the stream
        assert next(lines).startswith("data: ")
        busy = post(server, chat(stream=False))
        assert busy.status_code == 429 and busy.headers["retry-after"]
        rest = [line for line in lines if line]
    assert "did not finish within 2 s" in rest[-1]
    stand_in.answers.append([{"peer": PEER, "data": json.dumps({"id": "whole"})}])
    whole = post(server, chat(stream=False))
    assert whole.status_code == 200 and whole.json() == {"id": "whole"}  # the slot is free
