"""Benchmark runs and the network view through the management API, plus the pure pieces
behind them (download speed/ETA, the event hub's bound)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aria.api.manage.downloads import Throughput
from aria.api.manage.events import EventHub
from aria.api.metrics import PEER_REQUEST_HEADER
from tests.api.conftest import Server, make_node, running
from tests.p2p.procs import start_node

JSON = {"content-type": "application/json"}
SMALL = {"prompt_tokens": 16, "gen_tokens": 4, "runs": 1, "warmup": 0, "bandwidth_mib": 64}


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("jobs_home"), {"tiny": model_files["tiny"]})
    with running(node) as server:
        yield server


def _bench_events(server: Server, start: dict[str, Any]) -> list[dict[str, Any]]:
    """Start a run while subscribed; its ``bench`` events until it ends."""
    seen: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=server.url, timeout=300) as client,
        client.stream("GET", "/api/events") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == "event: hello"
        started = server.http().post("/api/bench", json=start)
        assert started.status_code == 202, started.text
        assert server.http().post("/api/bench", json=start).status_code == 409
        event = None
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "bench":
                seen.append(json.loads(line.removeprefix("data: ")))
                if seen[-1]["state"] != "running":
                    return seen
    raise AssertionError("the event stream ended")


@pytest.mark.slow
def test_a_benchmark_runs_aria_bench_and_keeps_its_json(live: Server) -> None:
    seen = _bench_events(live, {**SMALL, "model": "TINY"})
    assert seen[-1]["state"] == "done", seen[-1]
    labels = [e["label"] for e in seen]
    assert "measuring memory bandwidth" in labels and any("tiny" in label for label in labels)
    name = seen[-1]["result"]
    listed = live.http().get("/api/bench").json()
    assert listed["run"]["state"] == "done" and listed["results"][0]["name"] == name
    assert listed["results"][0]["models"][0]["model"] == "tiny"
    report = live.http().get(f"/api/bench/results/{name}").json()
    assert report["kind"] == "aria-bench" and report["plan"]["gen_tokens"] == 4
    model = report["models"][0]
    assert model["gen_tok_s"]["median"] > 0 and model["energy_j_per_token"]["median"] >= 0
    assert model["roofline"]["fraction"] > 0 and report["energy"]["label"]
    on_disk = json.loads((live.node.paths.bench / name).read_text())
    assert on_disk == report


def test_benchmark_requests_are_checked(live: Server) -> None:
    http = live.http()
    missing = http.post("/api/bench", json={**SMALL, "model": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_installed"
    assert http.post("/api/bench", json={**SMALL, "runs": 0}).status_code == 422
    assert http.post("/api/bench", json={**SMALL, "threads": "all"}).status_code == 422
    assert http.request("DELETE", "/api/bench", headers=JSON).status_code == 404
    assert http.get("/api/bench/results/..%2Fconfig.toml").status_code == 404
    assert http.get("/api/bench/results/20260101T000000Z.json").status_code == 404


@pytest.mark.slow
def test_a_running_benchmark_can_be_stopped(live: Server) -> None:
    with (
        httpx.Client(base_url=live.url, timeout=120) as client,
        client.stream("GET", "/api/events") as stream,
    ):
        lines = stream.iter_lines()
        next(lines)
        start = {**SMALL, "model": "TINY", "bandwidth_mib": 2048, "runs": 20}
        assert live.http().post("/api/bench", json=start).status_code == 202
        for line in lines:
            if '"measuring memory bandwidth"' in line:
                break
            assert '"state":"failed"' not in line, line  # fail now, not at the timeout
        assert live.http().request("DELETE", "/api/bench", headers=JSON).status_code == 200
        for line in lines:
            if line.startswith("data: ") and '"state":"running"' not in line:
                assert json.loads(line.removeprefix("data: "))["state"] == "cancelled"
                break
    assert live.http().get("/api/bench").json()["run"]["state"] == "cancelled"


def test_network_without_a_node_says_so_and_counts_requests_served_for_peers(
    live: Server,
) -> None:
    snapshot = live.http().get("/api/network").json()
    assert snapshot["running"] is False and snapshot["peers"] == []
    assert snapshot["traffic"] == {"used_remote": 0, "used_split": 0, "served_remote": 0}
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    live.http().post("/v1/chat/completions", json=body)  # a local client: not counted
    forwarded = live.http().post(
        "/v1/chat/completions", json=body, headers={PEER_REQUEST_HEADER: "1"}
    )
    assert forwarded.status_code == 200
    traffic = live.http().get("/api/network").json()["traffic"]
    assert traffic == {"used_remote": 0, "used_split": 0, "served_remote": 1}


@pytest.mark.slow
def test_network_shows_the_node_and_a_peer_that_joins(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    first = start_node(tmp_path / "a", *common)
    try:
        node = make_node(tmp_path / "a", {"tiny": model_files["tiny"]})
        with running(node) as server:
            snapshot = server.http().get("/api/network").json()
            assert snapshot["running"] is True and snapshot["peers"] == []
            assert snapshot["status"]["peer_id"] == first.status()["peer_id"]  # type: ignore[index]
            bootstrap = snapshot["status"]["listen_addrs"][0]
            second = start_node(tmp_path / "b", *common, "--bootstrap", bootstrap)
            try:
                b_id = second.status()["peer_id"]  # type: ignore[index]
                with (
                    httpx.Client(base_url=server.url, timeout=90) as client,
                    client.stream("GET", "/api/network/events") as stream,
                ):
                    for line in stream.iter_lines():
                        if line.startswith("data: "):
                            data = json.loads(line.removeprefix("data: "))
                            if any(p["peer_id"] == b_id for p in data["peers"]):
                                break
                # the consent page's change reaches the running node at once
                shared = server.http().put("/api/consent", json={"share_inference": True})
                running_node = shared.json()["running_node"]
                assert running_node["applied"] is True, running_node
                assert running_node["contract"] == shared.json()["sha256"]  # signed, then applied
            finally:
                second.stop()
    finally:
        first.stop()


def test_throughput_ignores_resumed_bytes_and_estimates_what_is_left() -> None:
    rate = Throughput(window_s=3.0)
    assert rate.speed() is None and rate.eta(0, 100) is None
    rate.add(10.0, 5_000)  # 5 kB resumed from disk: not speed
    assert rate.speed() is None
    rate.add(11.0, 6_000)
    rate.add(12.0, 7_000)
    assert rate.speed() == pytest.approx(1_000.0)
    assert rate.eta(7_000, 10_000) == pytest.approx(3.0)
    for second in range(13, 20):
        rate.add(float(second), 7_000 + (second - 12) * 4_000)  # faster now: the window follows
    assert rate.speed() == pytest.approx(4_000.0)
    rate.add(20.0, 35_000)
    rate.add(20.0, 35_000)  # no time passed since: same estimate, no division by zero
    assert rate.speed() is not None


def test_a_page_that_stops_reading_is_dropped_not_buffered() -> None:
    async def main() -> None:
        hub = EventHub(queue_size=4)
        body = hub.stream()
        assert (await anext(body)).startswith(b"event: hello")
        assert hub.subscribers == 1
        for n in range(10):  # nobody reads: the fifth event finds the queue full
            hub.publish("download", {"n": n})
        assert hub.subscribers == 0
        received = [chunk async for chunk in body]  # what was queued, then the end
        assert [json.loads(c.split(b"data: ")[1]) for c in received] == [{"n": n} for n in range(4)]

    anyio.run(main, backend="trio")
