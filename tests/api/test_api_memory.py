"""``/v1/memory`` and memory-augmented chat through a real server (tiny model, keywords only:
the scratch home has no embedding model; tests/memory/test_memory_real.py has the real one)."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aria.api import ServerConfig
from aria.apikeys import KeyStore
from aria.memory import store_file
from tests.api.conftest import Server, make_node, running

FACT = "My sister Clara lives in Rome"


@pytest.fixture(scope="module")
def closed(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("memory_off"), {"tiny": model_files["tiny"]})
    with running(node) as live:
        yield live


@pytest.fixture(scope="module")
def open_(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    node = make_node(
        tmp_path_factory.mktemp("memory_on"), {"tiny": model_files["tiny"]}, memory={"api": True}
    )
    with running(node) as live:
        yield live


def _chat(http: httpx.Client, text: str, **extra: object) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": text}], "max_tokens": 4}
    return http.post("/v1/chat/completions", json=body | extra)


def test_memory_is_off_over_the_api_until_the_operator_turns_it_on(closed: Server) -> None:
    http = closed.http()
    refused = http.post("/v1/memory", json={"text": FACT})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "memory_disabled"
    assert "aria memory api on" in refused.json()["error"]["message"]
    assert _chat(http, "hi", memory=True).status_code == 403
    plain = _chat(http, "hi")
    assert plain.status_code == 200 and "x-aria-memory" not in plain.headers
    assert "aria" not in plain.json()


def test_memories_can_be_added_listed_searched_and_forgotten(open_: Server) -> None:
    http = open_.http()
    added = http.post("/v1/memory", json={"text": FACT})
    assert added.status_code == 201
    memory = added.json()["memory"]
    assert memory["kind"] == "semantic" and memory["text"] == FACT
    assert http.post("/v1/memory", json={"text": FACT}).json()["duplicate_of"] == memory["id"]
    listed = http.get("/v1/memory", params={"kind": "semantic"}).json()["data"]
    assert memory["id"] in [m["id"] for m in listed]
    found = http.post("/v1/memory/search", json={"query": "where does Clara live"}).json()["data"]
    assert found[0]["id"] == memory["id"] and found[0]["keyword_rank"] == 1
    assert http.get(f"/v1/memory/{memory['id']}").json()["text"] == FACT
    assert http.delete(f"/v1/memory/{memory['id']}").json()["deleted"] == [memory["id"]]
    assert http.get(f"/v1/memory/{memory['id']}").status_code == 404
    path = store_file(open_.node.paths, "local")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"Clara" not in b"".join(p.read_bytes() for p in path.parent.glob("local.sqlite3*"))


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/v1/memory", {"text": "x", "kind": "dreams"}, 422),
        ("post", "/v1/memory", {"text": ""}, 422),
        ("post", "/v1/memory/search", {"query": "x", "mode": "psychic"}, 422),
        ("post", "/v1/memory/search", {"query": "x", "limit": 0}, 422),
        ("delete", "/v1/memory", None, 400),
        ("delete", "/v1/memory/m_000000000000", None, 404),
        ("get", "/v1/memory/r_000000000000", None, 404),
        ("post", "/v1/memory/reminders", {"text": "buy milk"}, 400),
        ("post", "/v1/memory/import", {"format": "something-else"}, 400),
    ],
)
def test_bad_memory_requests_get_openai_errors(
    open_: Server, method: str, path: str, body: object, status: int
) -> None:
    response = open_.http().request(method, path, json=body)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_export_and_import_round_trip(open_: Server) -> None:
    http = open_.http()
    http.post("/v1/memory", json={"text": "I play the cello"})
    document = http.get("/v1/memory/export").json()
    assert document["format"] == "aria-memory" and document["memories"]
    again = http.post("/v1/memory/import", json=document).json()
    assert again["memories"] == 0 and again["skipped"] >= 1


def test_chat_uses_and_grows_the_memory_and_says_so(open_: Server) -> None:
    http = open_.http()
    fact = http.post("/v1/memory", json={"text": "My cat Pixel is twelve years old"}).json()
    reply = _chat(http, "How old is my cat Pixel?", conversation_id="conv-1")
    assert reply.status_code == 200
    assert f"used={fact['memory']['id']}" in reply.headers["x-aria-memory"]
    used = reply.json()["aria"]["memory"]["used"]
    assert fact["memory"]["id"] in [m["id"] for m in used]
    turns = http.get("/v1/memory", params={"kind": "episodic", "limit": 5}).json()["data"]
    assert {t["role"] for t in turns if t["conversation"] == "conv-1"} == {"user", "assistant"}
    off = _chat(http, "How old is my cat Pixel?", memory=False)
    assert "x-aria-memory" not in off.headers and "aria" not in off.json()
    with http.stream(
        "POST", "/v1/chat/completions",
        json={"model": "tiny", "stream": True, "max_tokens": 3,
              "messages": [{"role": "user", "content": "Pixel again"}]},
    ) as streamed:  # fmt: skip
        assert "used=" in streamed.headers["x-aria-memory"]
        assert any(line.startswith("data:") for line in streamed.iter_lines())


def test_remember_that_in_a_chat_is_saved_and_confirmed(open_: Server) -> None:
    reply = _chat(open_.http(), "Remember that my dentist is Dr. Moreau")
    saved = reply.json()["aria"]["memory"]["saved"]
    assert saved["text"] == "my dentist is Dr. Moreau" and saved["kind"] == "semantic"
    assert "saved=" in reply.headers["x-aria-memory"]


def test_a_due_reminder_is_fired_on_time_and_delivered_once(open_: Server) -> None:
    http = open_.http()
    reminder = http.post("/v1/memory/reminders", json={"text": "in 1 second stretch"}).json()
    assert reminder["trigger"] == "time" and reminder["status"] == "pending"
    time.sleep(1.8)
    state = http.get(f"/v1/memory/{reminder['id']}").json()
    assert (
        state["status"] == "fired" and state["fired_at"] - state["due_at"] < 1.0
    )  # the API's watch
    reply = _chat(http, "hello")
    fired = json.loads(reply.headers["x-aria-reminders"])
    assert [r["text"] for r in fired] == ["stretch"]
    assert [r["id"] for r in reply.json()["aria"]["reminders"]] == [reminder["id"]]
    assert "x-aria-reminders" not in _chat(http, "hello again").headers


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[tuple[Server, str, str]]:
    node = make_node(tmp_path_factory.mktemp("memory_keys"), {"tiny": model_files["tiny"]})
    keys = KeyStore(node.paths.api)
    _, alice = keys.create("alice")
    _, bob = keys.create("bob")
    keys.set_memory("alice", True)
    with running(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as live:
        yield live, alice, bob


def test_each_api_key_has_its_own_memory_and_the_operator_decides(
    keyed: tuple[Server, str, str],
) -> None:
    server, alice, bob = keyed
    as_alice = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {alice}"})
    as_bob = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {bob}"})
    server.close_later(as_alice, as_bob)
    assert as_alice.post("/v1/memory", json={"text": "I live in Lyon"}).status_code == 201
    refused = as_bob.get("/v1/memory")
    assert refused.status_code == 403 and "aria api key memory bob on" in refused.text
    KeyStore(server.node.paths.api).set_memory("bob", True)
    assert as_bob.get("/v1/memory").json()["data"] == []  # Bob never sees Alice's memories
    assert [m["text"] for m in as_alice.get("/v1/memory").json()["data"]] == ["I live in Lyon"]
    alice_id = next(k.id for k in KeyStore(server.node.paths.api).all() if k.name == "alice")
    assert store_file(server.node.paths, f"key-{alice_id}").exists()
