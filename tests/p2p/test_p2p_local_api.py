"""The serving node's way to its own API: endpoint file, its own API key, chunk relay,
the API's errors as themselves."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
import trio

from aria.api import ServerConfig
from aria.api.background import serve_in_thread
from aria.apikeys import KeyStore
from aria.config import AriaPaths, AriaSettings
from aria.convert.synthetic import write_llama_gguf
from aria.errors import BackendUnavailable, ModelNotFound
from aria.hardware import detect
from aria.node import Node
from aria.p2p.local_api import endpoint_file, forward, read_endpoint, relay_headers

BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6}


def _collect(paths: AriaPaths, body: dict[str, object]) -> list[str]:
    async def run() -> list[str]:
        # what relay_headers adds for a peer's request (its token and ids need a node)
        marked = {"x-aria-peer-request": "1"}
        return [data async for data in forward(paths, body, headers=marked)]

    return trio.run(run)


def test_only_a_peers_request_is_marked_as_served_for_a_peer() -> None:
    assert relay_headers("t", "peer", peer="p")["x-aria-peer-request"] == "1"
    assert "x-aria-peer-request" not in relay_headers("t", "spotcheck")


def test_the_node_streams_from_its_api_with_its_own_key(aria_home: Path, tmp_path: Path) -> None:
    paths = AriaPaths(aria_home)
    node = Node.create(paths, AriaSettings(), hardware=detect())
    node.store.import_file(write_llama_gguf(tmp_path / "tiny.gguf"), model_id="tiny")
    _, operator = KeyStore(paths.api).create("operator")  # a keyed API (as on a LAN address)
    with serve_in_thread(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as url:
        endpoint = read_endpoint(paths)
        assert endpoint is not None and endpoint.url == url and endpoint.keys_required
        assert stat.S_IMODE(endpoint_file(paths).stat().st_mode) == 0o600
        events = _collect(paths, {**BODY, "stream": True})
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        whole = _collect(paths, BODY)
        assert len(whole) == 1 and json.loads(whole[0])["object"] == "chat.completion"
        names = [k.name for k in KeyStore(paths.api).all()]
        assert names == ["operator", "aria-node-peers"]  # created once, then reused
        metrics = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {operator}"})
        served = 'aria_peer_requests_total{direction="served",kind="remote"} 2.0'
        assert served in metrics.text  # the dashboard's "served for peers"
        with pytest.raises(ModelNotFound) as refused:
            _collect(paths, {**BODY, "model": "no-such-model"})
        assert refused.value.http_status == 404 and refused.value.param == "model"
        completion = _collect(paths, {"model": "tiny", "prompt": "Once", "max_tokens": 4})
        assert json.loads(completion[0])["object"] == "text_completion"
    assert read_endpoint(paths) is None  # removed when the API stopped
    with pytest.raises(BackendUnavailable, match="no ARIA API runs"):
        _collect(paths, BODY)
