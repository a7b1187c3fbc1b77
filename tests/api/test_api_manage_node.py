"""The management API's node side: the page at /, hardware, profile, consent, keys, events,
and what keeps other web pages from driving it (JSON-only writes, Origin, keys)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aria.api import ServerConfig
from aria.apikeys import KeyStore
from tests.api.conftest import Server, make_node, running
from tests.p2p.procs import wait_for


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("manage_home"), {"tiny": model_files["tiny"]})
    with running(node) as server:
        yield server


def _cli_json(home: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "aria", *args, "--json"],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=True,
    )
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_the_page_and_its_files_are_served_with_a_same_origin_policy(live: Server) -> None:
    http = live.http()
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = http.get("/ui/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    again = http.get("/ui/main.js", headers={"if-none-match": script.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert http.get("/ui/nope.js").status_code == 404
    assert http.get("/ui/../config.toml").status_code == 404


def test_hardware_says_what_the_machine_means_for_each_tier(live: Server) -> None:
    report = live.http().get("/api/hardware").json()
    assert set(report) >= {"snapshot", "advice", "recommended_threads", "memory_budget_bytes"}
    assert {item["tier"] for item in report["advice"]} >= {"efficiency", "quality"}
    assert all(
        set(found) <= set(report["snapshot"]["cpu"]["features"])
        for found in report["feature_groups"].values()
    )
    cli = _cli_json(live.node.paths.home, "hardware", "info")
    assert cli["feature_groups"] == report["feature_groups"]


def test_profile_switch_is_saved_applies_at_once_and_the_cli_agrees(live: Server) -> None:
    http = live.http()
    assert http.get("/api/profile").json()["active"] == "efficient"
    saved = http.put("/api/profile", json={"profile": "balanced"})
    assert saved.status_code == 200 and saved.json()["active"] == "balanced"
    assert saved.json()["overridden"] is False
    config = tomllib.loads(live.node.paths.config_file.read_text())
    assert config["node"]["profile"] == "balanced"
    assert "profile balanced" in http.get("/v1/models").json()["data"][0]["description"]
    shown = _cli_json(live.node.paths.home, "node", "profile", "show")
    assert shown["active"] == "balanced"
    assert {p["name"]: p["tiers"] for p in shown["profiles"]}["balanced"] == [
        "efficiency",
        "quality",
    ]
    refused = http.put("/api/profile", json={"profile": "turbo"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "profile"
    assert http.get("/api/profile").json()["active"] == "balanced"
    http.put("/api/profile", json={"profile": "efficient"})


def test_consent_changes_are_validated_then_signed_into_the_contract(live: Server) -> None:
    http = live.http()
    before = http.get("/api/consent").json()
    assert before["signed"] is True and before["settings"]["use_peers"] is False
    assert (
        before["descriptions"]["share_rpc"] and before["contract"]["version"] == before["version"]
    )
    changed = http.put("/api/consent", json={"use_peers": True, "max_remote_jobs": 3})
    assert changed.status_code == 200
    body = changed.json()
    assert body["version"] == before["version"] + 1 and body["signed"] is True
    assert body["settings"]["use_peers"] is True and body["settings"]["max_remote_jobs"] == 3
    assert body["contract"]["use"]["prompts_may_leave"] is True
    assert body["running_node"] is None  # no node runs on this home
    assert live.node.contract().use.prompts_may_leave  # this API follows it at once
    shown = _cli_json(live.node.paths.home, "node", "consent", "show")  # as the CLI sees it
    assert shown["sha256"] == body["sha256"] and shown["signed"] is True
    assert shown["contract"]["lend"]["max_jobs"] == 3
    config = live.node.paths.config_file
    assert not config.exists() or "consent" not in tomllib.loads(config.read_text())  # untouched
    same = http.put("/api/consent", json={"use_peers": True})  # nothing changes: no new version
    assert same.json()["version"] == body["version"]
    for bad in (
        {"max_remote_jobs": -1},
        {"max_remote_tokens": 0},
        {"share_inference": "maybe"},
        {"rpc_peers": "everyone"},
        {"free_lunch": True},
    ):
        refused = http.put("/api/consent", json=bad)
        assert refused.status_code == 422, bad
        error = refused.json()["error"]
        assert error["param"] == next(iter(bad)) and error["type"] == "invalid_request_error"
    assert http.get("/api/consent").json()["version"] == body["version"]
    http.put("/api/consent", json={"use_peers": False, "max_remote_jobs": 1})


def test_a_new_key_is_shown_once_and_revoking_works(live: Server) -> None:
    http = live.http()
    created = http.post("/api/keys", json={"name": "laptop"})
    assert created.status_code == 201
    secret = created.json()["key"]
    assert secret.startswith("aria-") and created.json()["hint"] == secret[:9] + "..."
    listed = http.get("/api/keys").json()
    assert listed["required"] is False and secret not in json.dumps(listed)
    assert secret not in (live.node.paths.api / "keys.json").read_text()
    assert KeyStore(live.node.paths.api).verify(secret)
    assert http.post("/api/keys", json={"name": "laptop"}).status_code == 409
    assert http.post("/api/keys", json={"name": ""}).status_code == 422
    missing = http.request("DELETE", "/api/keys/nope", headers={"content-type": "application/json"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    revoked = http.request(
        "DELETE", f"/api/keys/{created.json()['id']}", headers={"content-type": "application/json"}
    )
    assert revoked.status_code == 200 and not KeyStore(live.node.paths.api).verify(secret)


def test_a_keys_memory_switch_is_saved_and_the_cli_agrees(live: Server) -> None:
    http = live.http()
    created = http.post("/api/keys", json={"name": "diary"}).json()
    assert created["memory"] is False
    switched = http.put(f"/api/keys/{created['id']}", json={"memory": True})
    assert switched.status_code == 200 and switched.json()["memory"] is True
    assert "key" not in switched.json() and "sha256" not in switched.json()
    found = KeyStore(live.node.paths.api).find(created["key"])
    assert found is not None and found.memory
    listed = _cli_json(live.node.paths.home, "api", "key", "list")["keys"]
    assert [k["memory"] for k in listed if k["id"] == created["id"]] == [True]
    assert http.put("/api/keys/nope", json={"memory": True}).status_code == 404
    assert http.put(f"/api/keys/{created['id']}", json={"memory": "yes"}).status_code == 422
    assert http.put(f"/api/keys/{created['id']}", json={"name": "x"}).status_code == 422
    http.request(
        "DELETE", f"/api/keys/{created['id']}", headers={"content-type": "application/json"}
    )


def test_changes_from_other_web_pages_are_refused(live: Server) -> None:
    http = live.http()
    # An HTML form can post text/plain, urlencoded or multipart bodies without a preflight.
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        forged = http.put(
            "/api/profile", content=b'{"profile": "full"}', headers={"content-type": kind}
        )
        assert forged.status_code == 415, kind
        assert forged.json()["error"]["code"] == "unsupported_media_type"
    bare = http.request("DELETE", "/api/keys/any")
    assert bare.status_code == 415
    cross = http.put(
        "/api/profile", json={"profile": "full"}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    same = http.put("/api/profile", json={"profile": "efficient"}, headers={"origin": live.url})
    assert same.status_code == 200
    assert tomllib.loads(live.node.paths.config_file.read_text())["node"]["profile"] == "efficient"


def test_events_stream_says_hello_then_carries_changes(live: Server) -> None:
    with (
        httpx.Client(base_url=live.url, timeout=30) as events,
        events.stream("GET", "/api/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: hello"
        assert json.loads(next(lines).removeprefix("data: ")) == {"keepalive_s": 25.0}
        live.http().put("/api/profile", json={"profile": "full"})
        received = [next(lines) for _ in range(3)]
        assert received[1:] == ["event: profile", 'data: {"active":"full"}']
    live.http().put("/api/profile", json={"profile": "efficient"})


def test_with_keys_required_the_page_is_open_but_the_api_is_not(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    node = make_node(tmp_path / "home", {"tiny": model_files["tiny"]})
    _, secret = KeyStore(node.paths.api).create("owner")
    with running(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as server:
        http = server.http()
        assert http.get("/").status_code == 200 and http.get("/ui/app.css").status_code == 200
        for path in ("/api/hardware", "/api/catalog", "/api/events", "/api/keys"):
            assert http.get(path).status_code == 401, path
        assert http.get("/ui/nope.js").status_code == 401  # only the site's own files are open
        wrong = http.get("/api/keys", headers={"authorization": "Bearer aria-wrong"})
        assert wrong.status_code == 401
        mine = http.get("/api/keys", headers={"authorization": f"Bearer {secret}"}).json()
        assert mine["required"] is True and mine["current"] == mine["keys"][0]["id"]


def test_open_event_streams_do_not_hold_the_server_when_it_stops(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    node = make_node(tmp_path / "home", {"tiny": model_files["tiny"]})
    opened: list[str] = []
    ended: list[str] = []

    def read(url: str) -> None:  # as a page does: to the end of the response
        with httpx.Client(timeout=60) as client, client.stream("GET", url) as stream:
            lines = stream.iter_lines()
            opened.append(next(lines))
            for _ in lines:
                pass
        ended.append(url)

    config = ServerConfig("127.0.0.1", 0, graceful_timeout_s=30.0)
    with running(node, config) as server:
        readers = [
            threading.Thread(target=read, args=(f"{server.url}/api/{path}",))
            for path in ("events", "network/events")
        ]
        for reader in readers:
            reader.start()
        wait_for(lambda: len(opened) == 2, 30, "both streams to open")
        stopping = time.monotonic()
    elapsed = time.monotonic() - stopping
    for reader in readers:
        reader.join(10)
    # Both ended as responses when the server began to stop, not 30 s later when
    # hypercorn would have cut them (a page would then show an error, not reconnect).
    assert sorted(opened) == ["event: hello", "event: network"] and len(ended) == 2
    assert elapsed < 10, elapsed
