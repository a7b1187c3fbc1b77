"""Memories never leave the machine: a memory-augmented request served by a peer sends none.

A (node + API, memory on, a secret in its memory, no model) asks for a model only B serves.
B is a real node whose local API is replaced by a capturing HTTP server, so the test sees
exactly what reached the peer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from aria.config import AriaPaths
from aria.p2p.local_api import write_endpoint
from tests.p2p.procs import cli, start_api, start_node, wait_for
from tests.p2p.test_p2p_remote_inference import MODEL, _install

pytestmark = pytest.mark.slow

SECRET = "X7Y3Z9Q2"


class _Capture(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.received.append(body)
        # A peer is always asked to stream (aria.p2p.inference.request_body): answer so.
        base = {
            "id": "chatcmpl-capture",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
        }
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"},
                                  "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
        ]  # fmt: skip
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def capture() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Capture.received
    server.shutdown()


def test_a_request_served_by_a_peer_carries_no_memory(
    tmp_path: Path, capture: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = capture
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _install(b, tmp_path)
    assert "inference sharing on" in cli(b, "node", "share", "--inference", "on")
    assert "use peers on" in cli(a, "node", "share", "--use-peers", "on")
    assert "on" in cli(a, "memory", "api", "on")
    cli(a, "memory", "add", f"My passport number is {SECRET}")
    write_endpoint(AriaPaths(b), url, keys_required=False)  # B's "API" is the capture server
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    node_a = start_node(a, *common)
    stoppers: list[Any] = [node_a]
    try:
        boot = node_a.status()["listen_addrs"][0]  # type: ignore[index]
        node_b = start_node(b, *common, "--bootstrap", boot)
        stoppers.append(node_b)
        api = start_api(a)
        stoppers.append(api)
        wait_for(lambda: node_a.query("find", MODEL), 90, "A to find B's model", every_s=2)
        question = {"role": "user", "content": "What is my passport number?"}
        body = {"model": MODEL, "messages": [question], "memory": True, "conversation_id": "c1"}

        reply = httpx.post(api.url + "/v1/chat/completions", json=body, timeout=120)

        assert reply.status_code == 200, reply.text
        assert reply.headers["x-aria-served-by"] == node_b.status()["peer_id"]  # type: ignore[index]
        assert reply.headers["x-aria-memory"] == "withheld (the request left this machine)"
        [sent] = received
        assert SECRET not in json.dumps(sent)
        assert sent["messages"] == [question]
        assert sent["memory"] is False and "conversation_id" not in sent
        local = httpx.post(api.url + "/v1/memory/search", json={"query": "passport"}, timeout=60)
        assert SECRET in local.text  # the memory is there, and stayed here
    finally:
        for item in reversed(stoppers):
            item.stop()
