"""The management API's model side: catalog, downloads from a local hub mirror (progress,
cancel, resume), verify, remove, and importing a local GGUF behind the licence question."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from aria.convert import write_llama_gguf
from tests.api.conftest import Server, running
from tests.helpers.hubnode import HUB_MODEL, hub_node, publish_model
from tests.helpers.hubserver import HubServer

JSON = {"content-type": "application/json"}


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture
def live(tmp_path: Path, hub: HubServer) -> Iterator[Server]:
    entry = publish_model(hub, tmp_path)
    with running(hub_node(tmp_path / "home", hub, entry)) as server:
        yield server


@contextmanager
def watching(server: Server) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """Subscribe to the events, then ``until(state)``: the ``download`` events' data up to
    the first one in ``state`` (subscribed first, so a job that ends at once is seen)."""
    with (
        httpx.Client(base_url=server.url, timeout=60) as client,
        client.stream("GET", "/api/events") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == "event: hello"

        def until(state: str) -> list[dict[str, Any]]:
            seen, event = [], None
            for line in lines:
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "download":
                    seen.append(json.loads(line.removeprefix("data: ")))
                    if seen[-1]["state"] == state:
                        return seen
                    assert seen[-1]["state"] == "running", seen[-1]
            raise AssertionError("the event stream ended")

        yield until


def _record(server: Server, model_id: str) -> dict[str, Any]:
    models = server.http().get("/api/catalog").json()["models"]
    found: dict[str, Any] = next(m for m in models if m["id"] == model_id)
    return found


def test_the_catalog_says_tier_size_licence_install_state_and_runs_here(live: Server) -> None:
    catalog = live.http().get("/api/catalog").json()
    assert set(catalog["licence_classes"]) == {"green", "yellow", "red"}
    assert catalog["profile"] == "efficient" and catalog["tiers_enabled"] == ["efficiency"]
    record = _record(live, HUB_MODEL)
    assert record["installed"] is None and record["licence_class"] == "green"
    assert record["runs_here"]["engine"] == "llama.cpp" and record["size_bytes"] > 0
    assert record["licence_summary"] == "permissive (Apache 2.0)" and record["routable"] is True
    bitnet = _record(live, "BitNet-b1.58-2B-4T")
    assert bitnet["runs_here"]["engine"] is None and bitnet["runs_here"]["remedy"]


def test_a_download_streams_progress_to_100_percent_and_the_model_answers(
    live: Server, hub: HubServer
) -> None:
    hub.faults.throttle_bps = 3_000_000  # a few seconds: several progress events
    with watching(live) as until:
        started = live.http().post(f"/api/models/{HUB_MODEL}/download", json={})
        assert started.status_code == 202 and started.json()["state"] == "running"
        again = live.http().post(f"/api/models/{HUB_MODEL}/download", json={})
        assert again.status_code == 409
        seen = until("done")
    running = [e for e in seen if e["state"] == "running" and e["total_bytes"]]
    assert len(running) >= 3
    done = [e["done_bytes"] for e in running]
    assert done == sorted(done) and done[-1] == running[-1]["total_bytes"]
    assert any(e["speed_bps"] and e["eta_s"] is not None for e in running)
    assert _record(live, HUB_MODEL)["installed"]["origin"] == "catalog"
    reply = live.client().chat.completions.create(
        model=HUB_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert reply.model == HUB_MODEL and reply.usage is not None
    with watching(live) as until:
        finished = live.http().post(f"/api/models/{HUB_MODEL}/download", json={})
        assert finished.status_code == 202  # installed already: a job that is done at once
        assert until("done")[-1]["done_bytes"] == running[-1]["total_bytes"]


def test_cancel_keeps_the_bytes_and_the_next_download_resumes(live: Server, hub: HubServer) -> None:
    hub.faults.throttle_bps = 400_000
    with watching(live) as until:
        live.http().post(f"/api/models/{HUB_MODEL}/download", json={})
        event = until("running")[-1]
        while event["done_bytes"] < 300_000:
            event = until("running")[-1]
        cancel = live.http().request("DELETE", f"/api/downloads/{HUB_MODEL}", headers=JSON)
        assert cancel.status_code == 200
        assert until("cancelled")[-1]["done_bytes"] >= 300_000
    assert _record(live, HUB_MODEL)["installed"] is None
    assert (
        live.http().request("DELETE", f"/api/downloads/{HUB_MODEL}", headers=JSON).status_code
        == 404
    )
    hub.faults.throttle_bps = None
    with watching(live) as until:
        live.http().post(f"/api/models/{HUB_MODEL}/download", json={})
        until("done")
    assert any(int(r.removeprefix("bytes=").rstrip("-")) >= 300_000 for r in hub.range_gets())


def test_download_refusals_are_clear(live: Server) -> None:
    http = live.http()
    unknown = http.post("/api/models/no-such-model/download", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    bitnet = http.post("/api/models/BitNet-b1.58-2B-4T/download", json={})
    assert (
        bitnet.status_code == 409
        and "aria engine install bitnet" in bitnet.json()["error"]["message"]
    )
    assert (
        http.post(f"/api/models/{HUB_MODEL}/download", json={"anyway": "sure"}).status_code == 422
    )


def test_verify_catches_a_corrupted_file_and_remove_deletes(live: Server, tmp_path: Path) -> None:
    http = live.http()
    path = write_llama_gguf(tmp_path / "mine.gguf", seed=3)
    imported = http.post("/api/models/import", json={"path": str(path), "id": "mine"})
    assert imported.status_code == 201 and imported.json()["installed"]["origin"] == "import"
    ok = http.post("/api/models/mine/verify", json={}).json()["results"]
    assert (
        ok == [{"id": "mine", "ok": True, "detail": ok[0]["detail"]}]
        and "matches" in ok[0]["detail"]
    )
    stored = Path(imported.json()["installed"]["path"])
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    bad = http.post("/api/models/mine/verify", json={}).json()["results"][0]
    assert bad["ok"] is False and "corrupted" in bad["detail"]
    assert http.post("/api/models/mine/verify", json={}).status_code == 404
    again = http.post("/api/models/import", json={"path": str(path), "id": "mine"})
    assert again.status_code == 201
    removed = http.request("DELETE", "/api/models/mine", headers=JSON)
    assert removed.status_code == 200 and removed.json() == {"removed": "mine"}
    assert http.request("DELETE", "/api/models/mine", headers=JSON).status_code == 404


def test_import_asks_the_licence_question_before_copying(live: Server, tmp_path: Path) -> None:
    http = live.http()
    green = http.post(
        "/api/models/inspect", json={"path": str(write_llama_gguf(tmp_path / "g.gguf"))}
    )
    assert green.status_code == 200 and green.json()["verdict"] == "allowed"
    assert green.json()["suggested_id"] == "g" and green.json()["licence_class"] == "green"
    llama = write_llama_gguf(tmp_path / "Local Llama.gguf", seed=5, license="llama3")
    yellow = http.post("/api/models/inspect", json={"path": str(llama)}).json()
    assert yellow["verdict"] == "needs_acceptance" and yellow["licence_class"] == "yellow"
    assert "accept" in yellow["question"] and "never shared" in yellow["question"]
    assert yellow["suggested_id"] == "Local-Llama"
    refused = http.post("/api/models/import", json={"path": str(llama)})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "licence_not_accepted"
    assert _record_or_none(live, "Local-Llama") is None
    accepted = http.post("/api/models/import", json={"path": str(llama), "accept_licence": True})
    assert accepted.status_code == 201 and accepted.json()["installed"]["licence_accepted"] is True
    red = write_llama_gguf(tmp_path / "nc.gguf", seed=6, license="cc-by-nc-4.0")
    assert http.post("/api/models/inspect", json={"path": str(red)}).json()["verdict"] == "refused"
    assert http.post("/api/models/import", json={"path": str(red)}).status_code == 400


def test_import_of_what_is_not_a_gguf_file_is_a_clear_error(live: Server, tmp_path: Path) -> None:
    http = live.http()
    missing = http.post("/api/models/inspect", json={"path": str(tmp_path / "nope.gguf")})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "path"
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    for endpoint in ("/api/models/inspect", "/api/models/import"):
        answer = http.post(endpoint, json={"path": str(text)})
        assert answer.status_code == 400, endpoint
        assert answer.json()["error"]["type"] == "invalid_request_error"
    assert http.post("/api/models/inspect", json={"path": ""}).status_code == 422


def _record_or_none(server: Server, model_id: str) -> dict[str, Any] | None:
    models = server.http().get("/api/catalog").json()["models"]
    return next((m for m in models if m["id"] == model_id), None)
