"""Remote inference end to end: real nodes and APIs (own processes and homes) on loopback.

A (requester: node + API, ``use_peers`` on, no model) reaches B (node + API, shares
inference, serves a tiny synthetic model) and C (serves the same model, consent off).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from aria.convert.synthetic import write_llama_gguf
from aria.errors import ConsentRefused
from aria.p2p.control import NodeClient
from tests.p2p.procs import Api, NodeProc, cli, install, start_api, start_node, wait_for

pytestmark = pytest.mark.slow

MODEL = "tiny-remote"
# The synthetic vocabulary's end tokens (</s>, <|im_end|>) banned: the answer runs its length.
ENDLESS = {"2": -100, "4": -100}
ONLY_ON_C = "tiny-only-c"  # served by a node whose operator does not share inference


def _install(home: Path, scratch: Path, model_id: str = MODEL) -> None:
    install(home, write_llama_gguf(scratch / "tiny.gguf", n_ctx=2048), model_id)


@dataclass
class Cluster:
    a: NodeProc
    b: NodeProc
    c: NodeProc
    api_a: Api
    api_b: Api
    b_id: str
    c_id: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("remote")
    homes = {name: root / name for name in "abc"}
    for home in homes.values():
        home.mkdir()
    _install(homes["b"], root)
    _install(homes["c"], root)
    _install(homes["c"], root, ONLY_ON_C)
    assert "inference sharing on" in cli(homes["b"], "node", "share", "--inference", "on")
    assert "use peers on" in cli(homes["a"], "node", "share", "--use-peers", "on")
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    stoppers: list[NodeProc | Api] = []
    try:
        a = start_node(homes["a"], *common)
        stoppers.append(a)
        boot = a.status()["listen_addrs"][0]  # type: ignore[index]
        b = start_node(homes["b"], *common, "--bootstrap", boot)
        stoppers.append(b)
        c = start_node(homes["c"], *common, "--bootstrap", boot)
        stoppers.append(c)
        api_a, api_b = start_api(homes["a"]), start_api(homes["b"])
        stoppers += [api_a, api_b]
        b_id, c_id = b.status()["peer_id"], c.status()["peer_id"]  # type: ignore[index]

        def both_found() -> bool:
            found = a.query("find", MODEL) or []
            return {p["peer_id"] for p in found} == {b_id, c_id}

        wait_for(both_found, 90, "A to find the model on B and C", every_s=2)
        wait_for(lambda: a.query("find", ONLY_ON_C), 60, "A to find C's own model", every_s=2)
        yield Cluster(a, b, c, api_a, api_b, b_id, c_id)
    finally:
        for item in reversed(stoppers):
            item.stop()


def test_share_persists_consent_and_the_advert_reflects_it(cluster: Cluster) -> None:
    offers = {p["peer_id"]: p for p in cluster.a.query("find", MODEL)}
    assert offers[cluster.b_id]["consent"]["share_inference"] is True
    assert offers[cluster.c_id]["consent"]["share_inference"] is False
    assert "inference sharing off" in cli(cluster.c.home, "node", "share")


def test_streaming_through_the_requesters_api_is_served_by_the_peer(cluster: Cluster) -> None:
    client = openai.OpenAI(base_url=cluster.api_a.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        max_tokens=12,
    )
    assert raw.headers["x-aria-served-by"] == cluster.b_id
    chunks = list(raw.parse())
    assert chunks and all(c.model == MODEL for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    whole = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    assert whole.headers["x-aria-served-by"] == cluster.b_id
    assert whole.parse().choices[0].finish_reason in ("stop", "length")


def test_the_serving_node_rejects_what_its_contract_does_not_lend(cluster: Cluster) -> None:
    node = NodeClient.require(cluster.a.paths)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with pytest.raises(Exception) as refused:
        list(node.stream("infer", body=body, peer_id=cluster.c_id))
    assert getattr(refused.value, "code", None) == ConsentRefused.code
    assert "task_not_allowed" in str(refused.value)


def test_the_api_names_the_refusal_when_only_refusing_peers_serve_the_model(
    cluster: Cluster,
) -> None:
    client = openai.OpenAI(base_url=cluster.api_a.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model=ONLY_ON_C, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    assert refused.value.code == ConsentRefused.code
    assert "task_not_allowed" in refused.value.message and cluster.c_id in refused.value.message


def test_a_model_no_peer_serves_gets_the_local_not_found_error(cluster: Cluster) -> None:
    client = openai.OpenAI(base_url=cluster.api_a.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="nobody-has-this", messages=[{"role": "user", "content": "Hi"}]
        )
    assert missing.value.code == "model_not_found"


def test_too_many_tokens_is_refused_with_its_reason(cluster: Cluster) -> None:
    client = openai.OpenAI(base_url=cluster.api_a.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=100_000
        )
    assert "too_many_tokens" in refused.value.message


def test_a_requester_that_leaves_cancels_the_job_and_frees_the_slot(cluster: Cluster) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a long story"}],
        "stream": True,
        "max_tokens": 1000,
        "logit_bias": ENDLESS,  # still generating when the requester leaves
    }
    with httpx.stream(
        "POST", cluster.api_a.url + "/v1/chat/completions", json=body, timeout=60
    ) as reply:
        assert reply.headers["x-aria-served-by"] == cluster.b_id
        next(line for line in reply.iter_lines() if line.startswith("data:"))

    def cancelled() -> bool:
        log = cluster.b.log()
        return (
            "0 in flight" in log[log.find("requester left") :] if "requester left" in log else False
        )

    wait_for(cancelled, 30, "B to cancel the abandoned job")
    # B takes one remote job at a time: a leaked slot would make this one `busy`.
    client = openai.OpenAI(base_url=cluster.api_a.url + "/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_killing_the_serving_node_mid_stream_gives_a_clear_error(cluster: Cluster) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a long story"}],
        "stream": True,
        "max_tokens": 1000,
        # Forbid the end tokens (</s>, <|im_end|>) so the random model cannot finish
        # before the kill lands.
        "logit_bias": {"2": -100, "4": -100},
    }
    events: list[str] = []
    with httpx.stream(
        "POST", cluster.api_a.url + "/v1/chat/completions", json=body, timeout=60
    ) as reply:
        assert reply.headers["x-aria-served-by"] == cluster.b_id
        for line in reply.iter_lines():
            if not line.startswith("data:"):
                continue
            events.append(line[5:].strip())
            if len(events) == 2:
                cluster.b.proc.send_signal(signal.SIGKILL)
    assert events[-1] != "[DONE]"
    error = json.loads(events[-1])["error"]
    assert cluster.b_id in error["message"]
    assert httpx.get(cluster.api_a.url + "/health", timeout=10).status_code == 200
