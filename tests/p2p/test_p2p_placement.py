"""One placement decision, proved with three node processes (each its own home, node and
API, on loopback).

A (profile ``balanced``, ``use_peers`` on) holds only the embedded default model, so no
local model suits a code query; B and C both share inference and serve ``tiny-coder``
(a synthetic import, known to A only through the card in their adverts). The same chain
decides for A's API (``model="auto"``) and for ``aria infer`` / ``aria chat`` on A: the
code query goes to a peer, and the response says which; with ``use_peers`` off it is
answered here with a notice; a peer's ``context_length_exceeded`` reaches the client as
that 400 and nobody else is asked; a peer killed mid-stream ends that stream with an
error and the next request goes to the next entry.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from aria.convert.synthetic import write_llama_gguf
from tests.api.test_api_smollm import MODEL as DEFAULT
from tests.api.test_api_smollm import smollm_file
from tests.p2p.procs import Api, NodeProc, _env, cli, install, start_api, start_node, wait_for
from tests.p2p.test_p2p_remote_inference import ENDLESS

pytestmark = pytest.mark.slow

CODER = "tiny-coder"
QUERY = "Write a Python function that parses a CSV file and returns each row as a dict."
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUERY}]


@dataclass
class Cluster:
    a: NodeProc
    b: NodeProc
    c: NodeProc
    api_a: Api
    servers: dict[str, NodeProc]  # peer id -> node

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.api_a.url + "/v1", api_key="unused", max_retries=0)

    def jobs(self) -> dict[str, int]:
        """Remote jobs each peer has run so far (from its node's log)."""
        return {peer: node.log().count("remote job for") for peer, node in self.servers.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    default = smollm_file()
    if default is None:
        pytest.skip(f"{DEFAULT} is not installed (`aria model download {DEFAULT}`)")
    root = tmp_path_factory.mktemp("placement")
    homes = {name: root / name for name in "abc"}
    for home in homes.values():
        home.mkdir()
    install(homes["a"], default)  # recognised by its sha256: the catalog's embedded default
    coder = write_llama_gguf(root / "coder.gguf", n_ctx=2048, name="tiny-coder")
    for name in "bc":
        install(homes[name], coder, CODER)
        assert "inference sharing on" in cli(homes[name], "node", "share", "--inference", "on")
    assert "use peers on" in cli(homes["a"], "node", "share", "--use-peers", "on")
    with (homes["a"] / "config.toml").open("a") as config:  # the contract holds consent
        config.write('\n[node]\nprofile = "balanced"\n')
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    stoppers: list[NodeProc | Api] = []
    try:
        a = start_node(homes["a"], *common)
        stoppers.append(a)
        boot = a.status()["listen_addrs"][0]  # type: ignore[index]
        b = start_node(homes["b"], *common, "--bootstrap", boot)
        c = start_node(homes["c"], *common, "--bootstrap", boot)
        stoppers += [b, c]
        apis = [start_api(homes[name]) for name in "abc"]
        stoppers += apis
        servers = {str(n.status()["peer_id"]): n for n in (b, c)}  # type: ignore[index]

        def both_offer() -> bool:
            found = a.query("find", CODER) or []
            return {p["peer_id"] for p in found} == set(servers)

        wait_for(both_offer, 120, "A to find tiny-coder on B and C", every_s=2)
        yield Cluster(a, b, c, apis[0], servers)
    finally:
        for item in reversed(stoppers):
            item.stop()


def test_a_code_query_no_local_model_suits_is_served_by_a_peer(cluster: Cluster) -> None:
    raw = cluster.client().chat.completions.with_raw_response.create(
        model="auto", messages=ASK, max_tokens=12, stream=True
    )
    served_by = raw.headers["x-aria-served-by"]
    assert served_by in cluster.servers
    route = raw.headers["x-aria-route"]
    assert f"model={CODER}; where=peer {served_by}; category=code" in route
    assert "offered by a peer" in route
    chunks = list(raw.parse())
    assert chunks and all(c.model == CODER for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    # The completions endpoint takes the same path.
    text = httpx.post(
        cluster.api_a.url + "/v1/completions",
        json={"model": CODER, "prompt": "def parse(path):", "max_tokens": 6},
        timeout=120,
    )
    assert text.status_code == 200 and text.headers["x-aria-served-by"] in cluster.servers
    assert text.json()["object"] == "text_completion"


def test_aria_infer_and_aria_chat_take_the_same_chain(cluster: Cluster) -> None:
    infer = subprocess.run(
        [sys.executable, "-m", "aria", "infer", QUERY, "--json", "--max-tokens", "8"],
        env=_env(cluster.a.home),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    answer = json.loads(infer.stdout)
    assert answer["model"] == CODER and answer["served_by"] in cluster.servers
    assert "where=peer" in answer["route"] and "served by peer" in infer.stderr
    chat = subprocess.run(
        [sys.executable, "-m", "aria", "chat", "--max-tokens", "8"],
        input=f"{QUERY}\n/exit\n",
        env=_env(cluster.a.home),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "served by peer" in chat.stderr and CODER in chat.stdout


def test_without_use_peers_it_is_answered_here_with_a_notice(cluster: Cluster) -> None:
    home = cluster.a.home
    cli(home, "node", "consent", "set", "use.prompts_may_leave", "false")
    try:
        alone = subprocess.run(
            [sys.executable, "-m", "aria", "infer", QUERY, "--json", "--max-tokens", "8"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:  # the other tests of the module use peers
        cli(home, "node", "consent", "set", "use.prompts_may_leave", "true")
    answer = json.loads(alone.stdout)
    assert answer["model"] == DEFAULT and answer["served_by"] is None
    assert "note:" in alone.stderr and "last resort" in alone.stderr
    # The API: a request that asks to stay on this machine.
    response = httpx.post(
        cluster.api_a.url + "/v1/chat/completions",
        json={"messages": ASK, "max_tokens": 8},
        headers={"x-aria-placement": "local-only"},
        timeout=300,
    )
    assert response.status_code == 200 and "x-aria-served-by" not in response.headers
    assert (
        response.json()["model"] == DEFAULT and "last resort" in response.headers["x-aria-notice"]
    )


def test_a_peers_client_error_reaches_the_client_and_nobody_else_is_asked(
    cluster: Cluster,
) -> None:
    before = cluster.jobs()
    too_long: list[ChatCompletionMessageParam] = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.BadRequestError) as refused:
        cluster.client().chat.completions.create(model=CODER, messages=too_long, max_tokens=8)
    assert refused.value.status_code == 400 and refused.value.code == "context_length_exceeded"
    # The serving node logs the job once its stream is torn down, a moment after the 400.
    wait_for(lambda: sum(cluster.jobs().values()) > sum(before.values()), 60, "the job's log")
    after = cluster.jobs()
    asked = [peer for peer in after if after[peer] > before[peer]]
    assert len(asked) == 1, f"one peer tried, the other not asked: {before} -> {after}"


def test_a_peer_killed_mid_stream_sends_the_next_request_to_the_next_entry(
    cluster: Cluster,
) -> None:
    body = {"messages": ASK, "max_tokens": 1000, "stream": True, "logit_bias": ENDLESS}
    events: list[str] = []
    with httpx.stream(
        "POST", cluster.api_a.url + "/v1/chat/completions", json=body, timeout=120
    ) as reply:
        killed = reply.headers["x-aria-served-by"]
        for line in reply.iter_lines():
            if line.startswith("data:"):
                events.append(line[5:].strip())
                if len(events) == 3:
                    cluster.servers[killed].proc.send_signal(signal.SIGKILL)
    assert events[-1] != "[DONE]" and killed in json.loads(events[-1])["error"]["message"]
    survivor = next(peer for peer in cluster.servers if peer != killed)
    raw = cluster.client().chat.completions.with_raw_response.create(
        model="auto", messages=ASK, max_tokens=6
    )
    assert raw.headers["x-aria-served-by"] == survivor
    assert raw.parse().choices[0].finish_reason in ("stop", "length")
