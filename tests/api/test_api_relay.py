"""The API's generations on a peer, against a stand-in node on the real control channel
(a real ``ControlServer`` whose ``peers`` op reports one peer offering ``far-away`` and
whose ``infer`` op plays that peer): what a peer sends is checked and rendered again by
this API, what the client sent is filtered, and peer generations are bounded."""

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

from aria.catalog import Capability, Tier
from aria.p2p import peer_generation
from aria.p2p.adverts import ConsentSummary, ModelCard, ModelOffer
from aria.p2p.control import ControlServer
from aria.p2p.views import PeerView
from tests.api.conftest import Server, make_node, running

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
CHUNK = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}
END = {"object": "chat.completion.chunk", "choices": [{"index": 0, "finish_reason": "stop"}]}
CARD = ModelCard(
    tier=Tier.QUALITY,
    params_b=0.1,
    licence="Apache-2.0",
    context_length=4096,
    capabilities=frozenset({Capability.CHAT}),
    ram_gb=0.1,
)
OFFER = PeerView(
    peer_id=PEER,
    addrs=[],
    connection="direct",
    verified=True,
    models=[ModelOffer(id="far-away", sha256="1" * 64, licence_class="green", card=CARD)],
    consent=ConsentSummary(share_inference=True, max_remote_jobs=8, max_remote_tokens=512),
)


@dataclass
class StandIn:
    """What the stand-in node received, and what it answers next."""

    answers: list[list[Any]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    pause_s: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, StandIn]]:
    monkeypatch.setattr(peer_generation, "RELAY_DEADLINE_S", 2.0)
    node = make_node(tmp_path, {}, consent={"use_peers": True})
    node.relays.limit = 1
    stand_in = StandIn()

    async def peers(args: dict[str, Any]) -> list[dict[str, Any]]:
        return [OFFER.model_dump(mode="json")]

    async def infer(args: dict[str, Any]) -> AsyncIterator[Any]:
        stand_in.bodies.append(args["body"])
        stand_in.peers.append(args["peer_id"])
        items = stand_in.answers.pop(0)

        async def answer() -> AsyncIterator[Any]:
            for item in items:
                if item == "wait":
                    # trio-typing (pulled in by libp2p) predates this trio keyword.
                    wait = stand_in.release.wait
                    await trio.to_thread.run_sync(wait, abandon_on_cancel=True)  # type: ignore[call-arg]
                    continue
                yield item
                await trio.sleep(stand_in.pause_s)

        return answer()

    stop = threading.Event()
    ready = threading.Event()

    async def main() -> None:
        handlers = {"peers": peers, "infer": infer}
        control = ControlServer(node.paths, "12D3KooWStandIn", handlers, token="t0ken")
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


def content(lines: list[str]) -> str:
    text = ""
    for line in lines:
        chunk = json.loads(line.removeprefix("data: ")) if line != "data: [DONE]" else {}
        for choice in chunk.get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return text


def test_peer_chunks_are_rendered_here_and_the_client_body_is_filtered(
    relay: tuple[Server, StandIn],
) -> None:
    server, stand_in = relay
    spread = '{"object": "chat.completion.chunk",\n"choices": []}'  # valid JSON, raw newline
    stand_in.answers.append(
        [
            {"peer": PEER, "data": json.dumps(CHUNK)},
            {"data": spread},
            {"data": json.dumps(END)},
            {"data": "[DONE]"},
        ]
    )
    body = chat(user="alice@example.com", metadata={"secret": "x"}, max_tokens=5)
    response = post(server, body)
    assert response.status_code == 200 and response.headers["x-aria-served-by"] == PEER
    assert f"where=peer {PEER}" in response.headers["x-aria-route"]
    lines = data_lines(response.text)
    assert content(lines) == "x" and lines[-1] == "data: [DONE]"
    assert all(json.loads(line[6:])["model"] == "far-away" for line in lines[:-1])
    forwarded = stand_in.bodies[0]
    assert stand_in.peers == [PEER]
    assert "user" not in forwarded and "metadata" not in forwarded
    assert forwarded["model"] == "far-away" and forwarded["max_tokens"] == 5
    assert forwarded["stream"] is True and forwarded["stream_options"] == {"include_usage": True}


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
    assert content(lines[:-1]) == "x" and "injected" not in response.text
    assert json.loads(lines[-1].removeprefix("data: "))["error"]["code"] == "peer_error"


def test_a_bad_peer_id_is_refused_before_any_header(relay: tuple[Server, StandIn]) -> None:
    server, stand_in = relay
    stand_in.answers.append([{"peer": "x\r\nx-evil: 1", "data": json.dumps(CHUNK)}])
    response = post(server, chat())
    assert response.status_code == 502 and "x-evil" not in response.headers
    assert "x-aria-served-by" not in response.headers


def test_a_peer_generation_has_a_deadline_and_they_are_bounded(
    relay: tuple[Server, StandIn],
) -> None:
    server, stand_in = relay
    stand_in.answers.append([{"peer": PEER, "data": json.dumps(CHUNK)}, "wait"])
    with server.http() as http, http.stream("POST", "/v1/chat/completions", json=chat()) as slow:
        lines = slow.iter_lines()  # kept: dropping the iterator would close the stream
        assert next(lines).startswith("data: ")
        busy = post(server, chat(stream=False))
        assert busy.status_code == 429 and busy.headers["retry-after"]
        rest = [line for line in lines if line]
    assert "did not finish within 2 s" in rest[-1]
    stand_in.answers.append(
        [{"peer": PEER, "data": json.dumps(CHUNK)}, {"data": json.dumps(END)}, {"data": "[DONE]"}]
    )
    whole = post(server, chat(stream=False))  # the slot is free again
    assert whole.status_code == 200
    assert whole.json()["choices"][0]["message"]["content"] == "x"
