"""Every generation the API serves is recorded: a real API, real workers, a real ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from aria.cli.recording import open_records
from aria.config import AriaPaths, AriaSettings
from aria.convert.synthetic import write_llama_gguf
from aria.hardware import detect
from aria.ledger import Ledger, sha256_hex
from aria.node import Node
from aria.p2p.identity import load_identity
from tests.api.conftest import Server, running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("ledger_api")
    paths = AriaPaths(home)
    paths.ensure()
    settings = AriaSettings()
    node = Node.create(
        paths, settings, hardware=detect(), recorder=open_records(paths, settings).recorder
    )
    model = write_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", n_ctx=2048)
    node.store.import_file(model, model_id="tiny")
    with running(node) as live:
        yield live


def _ledger(server: Server) -> Ledger:
    paths = server.node.paths
    return Ledger.open(paths.ledger, signer=load_identity(paths).peer_id)


def _receipt(server: Server, receipt_id: str) -> dict[str, object]:
    with _ledger(server) as ledger:
        entry = ledger.find(receipt_id)
    assert entry is not None, f"no receipt {receipt_id}"
    decoded = entry.decoded()
    assert decoded["kind"] == "inference"
    body = decoded["body"]
    assert isinstance(body, dict)
    return body


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}


def test_a_chat_answer_has_a_receipt_matching_what_the_client_got(server: Server) -> None:
    with server.http() as http:
        reply = http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12})
    assert reply.status_code == 200
    answer = reply.json()
    body = _receipt(server, reply.headers["x-aria-receipt"])
    assert body["role"] == "local" and body["origin"] == "api" and "peer" not in body
    assert body["model"] == {"id": "tiny", "sha256": server.node.store.get("tiny").sha256}
    assert body["ran_on"] == {"where": "local", "devices": []}
    assert body["prompt_tokens"] == answer["usage"]["prompt_tokens"]
    assert body["completion_tokens"] == answer["usage"]["completion_tokens"]
    assert body["output_sha256"] == sha256_hex(answer["choices"][0]["message"]["content"])
    assert "prompt_text" not in body and "output_text" not in body  # hashes only by default
    energy = body["energy"]
    assert isinstance(energy, dict) and energy["source"] in {"rapl", "estimate"}
    assert energy["millijoules"] >= 0 and energy["label"]
    assert len(str(body["contract"])) == 64


def test_a_stream_is_recorded_before_its_end_reaches_the_client(server: Server) -> None:
    with (
        server.http() as http,
        http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as reply,
    ):
        receipt_id = reply.headers["x-aria-receipt"]
        text = []
        for line in reply.iter_lines():
            if line == "data: [DONE]":
                # the receipt is committed before the last events are written
                assert _receipt(server, receipt_id)["finish"] in {"stop", "length"}
            elif line.startswith("data: "):
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    text.append(delta[0]["delta"]["content"])
    assert _receipt(server, receipt_id)["output_sha256"] == sha256_hex("".join(text))


def test_a_client_that_leaves_leaves_a_cancelled_receipt(server: Server) -> None:
    with (
        server.http() as http,
        http.stream(
            "POST", "/v1/chat/completions", json={**CHAT, "stream": True, "max_tokens": 2000}
        ) as reply,
    ):
        receipt_id = reply.headers["x-aria-receipt"]
        for _ in zip(range(3), reply.iter_lines(), strict=False):
            pass
    import time

    deadline = time.monotonic() + 30
    while True:
        with _ledger(server) as ledger:
            found = ledger.find(receipt_id)
        if found is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    body = _receipt(server, receipt_id)
    assert body["finish"] == "cancelled" and int(str(body["completion_tokens"])) < 2000


def test_metrics_count_joules_and_tokens_per_joule(server: Server) -> None:
    with server.http() as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        metrics = http.get("/metrics").text
    assert 'aria_energy_joules_total{method="' in metrics and 'model="tiny"' in metrics
    assert "aria_tokens_per_joule{" in metrics


def test_the_ledger_verifies_after_all_that(server: Server) -> None:
    with _ledger(server) as ledger:
        report = ledger.verify()
        kinds = {e.decoded()["kind"] for e in ledger.entries()}
    assert report.ok, report
    assert kinds == {"contract", "inference"}


def test_errors_before_generation_leave_no_receipt(server: Server) -> None:
    with _ledger(server) as ledger:
        before = ledger.count()
    with server.http() as http:
        reply = http.post("/v1/chat/completions", json={**CHAT, "model": "missing"})
    assert reply.status_code == 404 and "x-aria-receipt" not in reply.headers
    with _ledger(server) as ledger:
        assert ledger.count() == before
