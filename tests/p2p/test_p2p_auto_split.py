"""Automatic split inference: a model too big for the node is served over two peers' workers.

Three real node processes on loopback, each with its own ARIA_HOME: A (orchestrator:
a memory budget too small for its model, ``use_peers`` on, runs the API) and B, C
(lend compute, ``share_rpc`` on, each offering too little to hold the model alone). The
reference is the same model run whole in a fourth home with ``aria infer``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths, update_settings
from aria.convert.synthetic import write_llama_gguf
from aria.store import ModelStore
from tests.p2p.procs import Api, NodeProc, _env, start_api, start_node, wait_for

pytestmark = pytest.mark.slow

MODEL = "tiny-auto-split"
PROMPT = "Tell me about the sea"
SECRET = "Q9W8E7"
MAX_TOKENS = 40
# The orchestrator can hold the input embeddings and scratch (~25 MB at context 1024) but
# not one more block (1.7 MB); each lender can hold at most two blocks with the output
# head, so the four blocks need both lenders.
BUDGET_GB = 0.025
LENDER_OFFER_GB = 0.03


@dataclass
class Cluster:
    a: NodeProc
    lenders: dict[str, NodeProc]
    api: Api
    reference: str


def _settings(home: Path, **changes: dict[str, object]) -> None:
    update_settings(AriaPaths(home), changes)


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _text(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("auto-split")
    gguf = write_llama_gguf(root / "tiny.gguf", quant="Q8_0", n_layers=4, n_ctx=1024)
    homes = {name: root / name for name in ("a", "b", "c", "ref")}
    for name in ("a", "ref"):
        ModelStore(AriaPaths(homes[name]), load_catalog(), load_denylist()).import_file(
            gguf, model_id=MODEL
        )
    _settings(
        homes["a"],
        inference={"memory_budget_gb": BUDGET_GB},
        consent={"use_peers": True},
        memory={"api": True},  # A's local memory is on: it must stay out of the split
    )
    _text(_run(homes["a"], "memory", "add", f"The sea is where I hid code {SECRET}", "--json"))
    for name in ("b", "c"):
        _settings(
            homes[name],
            consent={"share_rpc": True, "rpc_memory_gb": LENDER_OFFER_GB, "rpc_peers": ["*"]},
        )
    reference = _text(
        _run(homes["ref"], "infer", PROMPT, "--model", MODEL, "--temperature", "0",
             "--max-tokens", str(MAX_TOKENS), "--json")
    )["text"]  # fmt: skip
    assert isinstance(reference, str) and len(reference) > 20

    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    stoppers: list[NodeProc | Api] = []
    try:
        a = start_node(homes["a"], *common)
        stoppers.append(a)
        boot = a.status()["listen_addrs"][0]  # type: ignore[index]
        lenders = {}
        for name in ("b", "c"):
            node = start_node(homes[name], *common, "--bootstrap", boot)
            stoppers.append(node)
            lenders[str(node.status()["peer_id"])] = node  # type: ignore[index]
        for peer in lenders:

            def lends(p: str = peer) -> bool:
                view = a.peer(p) or {}
                return bool(view.get("verified") and view["consent"]["share_rpc"])

            wait_for(lends, 90, f"A to see {peer}'s advert lending compute", every_s=1)
        api = start_api(homes["a"])
        stoppers.append(api)
        yield Cluster(a, lenders, api, reference)
    finally:
        for item in reversed(stoppers):
            item.stop()


def test_model_run_distributed_splits_over_the_peers_and_matches_local(cluster: Cluster) -> None:
    # Runs first: a ggml-rpc worker serves one client at a time, and the API's split
    # backend (next test) keeps its connections while loaded.
    result = _run(
        cluster.a.home, "model", "run", MODEL, PROMPT, "--distributed",
        "--max-tokens", str(MAX_TOKENS), "--json",
    )  # fmt: skip
    answer = _text(result)
    assert answer["text"] == cluster.reference
    split = answer["split"]
    assert isinstance(split, dict)
    assert {p["peer_id"] for p in split["peers"]} == set(cluster.lenders)
    assert split["local_layers"] == 0
    assert "this node keeps the input embeddings" in result.stderr  # the plan explained


def test_the_api_splits_a_model_too_big_for_the_node_and_matches_local(cluster: Cluster) -> None:
    client = openai.OpenAI(base_url=cluster.api.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0,
        max_tokens=MAX_TOKENS,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == cluster.reference
    split = raw.headers["x-aria-split"]
    parts = dict(part.split("=") for part in split.split("; "))
    assert parts.pop("local") == "0"
    assert set(parts) == set(cluster.lenders)  # both lenders hold layers
    assert sum(int(n.removesuffix("+head")) for n in parts.values()) == 4
    assert "split=2 peer(s)" in raw.headers["x-aria-route"]


def test_memory_stays_out_of_a_split_request(cluster: Cluster) -> None:
    """The prompt would match A's memory, yet the split model gets the bare prompt: the
    greedy answer is the reference (computed without memory), token for token."""
    client = openai.OpenAI(base_url=cluster.api.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0,
        max_tokens=MAX_TOKENS,
        extra_body={"memory": True},
    )
    assert raw.headers["x-aria-memory"] == "withheld (the request left this machine)"
    assert "x-aria-split" in raw.headers
    assert raw.parse().choices[0].message.content == cluster.reference
