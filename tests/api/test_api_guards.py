"""The guards in front of the routes, against a real server: DNS rebinding (Host),
cross-origin pages (Origin), slow bodies, the connection cap, per-key limits, what an
unauthenticated client may see."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio

from aria.api import ServerConfig, serve
from aria.apikeys import KeyStore
from aria.errors import ConfigError
from tests.api.conftest import Server, make_node, running

HELLO = [{"role": "user", "content": "hi"}]
NO_END = {"2": -100, "4": -100}


def test_a_rebinding_host_gets_421_on_a_keyless_api(server: Server) -> None:
    port = urlsplit(server.url).port
    chat = {"model": "tiny", "messages": HELLO, "max_tokens": 2}
    for host in (f"evil.rebind.example:{port}", "attacker.example", f"LOCALHOST.evil:{port}"):
        response = server.http().post("/v1/chat/completions", json=chat, headers={"host": host})
        assert response.status_code == 421, host
        assert response.json()["error"]["code"] == "misdirected_request"
        assert server.http().get("/v1/models", headers={"host": host}).status_code == 421
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost."):
        assert server.http().get("/v1/models", headers={"host": host}).status_code == 200, host


def test_cross_origin_browser_requests_are_refused(server: Server) -> None:
    netloc = urlsplit(server.url).netloc
    chat = {"model": "tiny", "messages": HELLO, "max_tokens": 1}
    evil = server.http().post(
        "/v1/chat/completions", json=chat, headers={"origin": "https://evil.example"}
    )
    assert evil.status_code == 403 and evil.json()["error"]["code"] == "origin_not_allowed"
    assert server.http().get("/v1/models", headers={"origin": "null"}).status_code == 403
    same = server.http().post(
        "/v1/chat/completions", json=chat, headers={"origin": f"http://{netloc}"}
    )
    assert same.status_code == 200  # the API's own pages (/docs) are same-origin


def test_wildcard_cors_needs_keys_and_extra_host_names_can_be_allowed(tmp_path: Path) -> None:
    node = make_node(tmp_path / "a", {}, api={"cors_origins": ["*"]})
    with pytest.raises(ConfigError, match="cors_origins"):
        trio.run(lambda: serve(node, ServerConfig("127.0.0.1", 0)))
    KeyStore(node.paths.api).create("k")
    with running(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as keyed:
        assert keyed.http().get("/health").status_code == 200
    named = make_node(tmp_path / "b", {}, api={"allowed_hosts": ["aria.lan"]})
    with running(named) as server:
        assert server.http().get("/v1/models", headers={"host": "aria.lan:80"}).status_code == 200
        assert server.http().get("/v1/models", headers={"host": "other.lan"}).status_code == 421


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[tuple[Server, str, str]]:
    node = make_node(
        tmp_path_factory.mktemp("guards"),
        {"slow": model_files["slow"], "broken": model_files["tiny"]},
        api={"body_timeout_s": 3, "max_connections": 3, "max_requests_per_key": 1},
    )
    with (node.store.path_of("broken")).open("r+b") as handle:
        handle.write(b"\0" * 64)  # the store still lists it; llama.cpp cannot load it
    keys = KeyStore(node.paths.api)
    _, first = keys.create("first")
    _, second = keys.create("second")
    with running(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as live:
        yield live, first, second


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_with_keys_the_host_is_not_checked_but_the_key_is(
    guarded: tuple[Server, str, str],
) -> None:
    server, key, _ = guarded
    evil = {"host": "evil.rebind.example"}
    assert server.http().get("/v1/models", headers=evil).status_code == 401
    assert server.http().get("/v1/models", headers={**evil, **auth(key)}).status_code == 200


def test_health_is_minimal_without_a_key(guarded: tuple[Server, str, str]) -> None:
    server, key, _ = guarded
    assert server.http().get("/health").json() == {"status": "ok"}
    assert server.http().get("/health", headers=auth("aria-wrong")).json() == {"status": "ok"}
    full = server.http().get("/health", headers=auth(key)).json()
    assert {"version", "backends", "memory_budget_bytes"} <= set(full)


def _dribble(url: str, key: str) -> socket.socket:
    """Headers announcing a body that then arrives one byte at a time (or never)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.sendall(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    return sock


def _read_to_close(sock: socket.socket) -> bytes:
    """What the server still sends before it closes the connection (at most 5 s)."""
    sock.settimeout(5)
    rest = b""
    try:
        while chunk := sock.recv(65536):
            rest += chunk
    except OSError:
        pass
    return rest


def test_a_slow_body_times_out_with_408(guarded: tuple[Server, str, str]) -> None:
    server, key, _ = guarded
    sock = _dribble(server.url, key)
    started = time.monotonic()
    sock.settimeout(0.5)
    answer = b""
    while not answer and time.monotonic() - started < 20:
        try:
            sock.sendall(b" ")  # one byte every half second: alive, never done
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
    elapsed = time.monotonic() - started
    answer += _read_to_close(sock)  # the head and the body may arrive in separate reads
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer
    assert 2.5 < elapsed < 10
    assert server.http().get("/v1/models", headers=auth(key)).status_code == 200


def test_requests_beyond_the_connection_cap_get_503(guarded: tuple[Server, str, str]) -> None:
    server, key, _ = guarded
    keys = KeyStore(server.node.paths.api)
    extra = [keys.create(f"cap-{n}")[1] for n in range(3)]
    held = [_dribble(server.url, secret) for secret in extra]  # three requests in progress
    try:
        time.sleep(0.5)
        busy = server.http().get("/v1/models", headers=auth(key))
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "server_busy" and busy.headers["retry-after"]
        assert server.http().get("/health").status_code == 200  # probes still answered
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while server.http().get("/v1/models", headers=auth(key)).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _queued(server: Server, key: str, model: str) -> int:
    backends = server.http().get("/health", headers=auth(key)).json()["backends"]
    return int(next(b["queued"] for b in backends if b["model"] == model))


def test_one_key_cannot_take_every_slot(guarded: tuple[Server, str, str]) -> None:
    server, first, second = guarded
    long = {
        "model": "slow",
        "messages": HELLO,
        "max_tokens": 3000,
        "logit_bias": NO_END,
        "stream": True,
    }
    short = {"model": "slow", "messages": HELLO, "max_tokens": 1}
    with (
        server.http() as http,
        http.stream("POST", "/v1/chat/completions", json=long, headers=auth(first)) as holding,
    ):
        lines = holding.iter_lines()  # kept: dropping the iterator would close the stream
        next(lines)
        again = server.http().post("/v1/chat/completions", json=short, headers=auth(first))
        assert again.status_code == 429 and "max_requests_per_key" in again.text
        assert again.json()["error"]["code"] == "rate_limit_exceeded"
        other = server.http().post("/v1/chat/completions", json=short, headers=auth(second))
        assert other.status_code == 200  # admitted, and decoded beside the running stream
        assert _queued(server, first, "slow") == 1


def test_error_messages_carry_no_absolute_paths(guarded: tuple[Server, str, str]) -> None:
    server, key, _ = guarded
    body: dict[str, Any] = {"model": "broken", "messages": HELLO, "max_tokens": 1}
    response = server.http().post("/v1/chat/completions", json=body, headers=auth(key))
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "could not start" in message and "backend-broken.log" in message
    assert str(server.node.paths.home) not in message
    assert not re.search(r"(?<![\w:/.])/\w+/", message), message
