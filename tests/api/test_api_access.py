"""API keys, CORS, and the fallback chain behind ``model: auto``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from aria.api import ServerConfig, is_loopback, serve
from aria.apikeys import KeyStore
from aria.errors import ConfigError, Conflict, NotFound
from tests.api.conftest import Server, make_node, running

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[tuple[Server, str]]:
    node = make_node(
        tmp_path_factory.mktemp("guarded"),
        {"tiny": model_files["tiny"]},
        api={"cors_origins": ["https://app.example"]},
    )
    _, secret = KeyStore(node.paths.api).create("tests")
    with running(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as live:
        yield live, secret


def test_keys_are_required_and_checked(guarded: tuple[Server, str]) -> None:
    server, secret = guarded
    with pytest.raises(openai.AuthenticationError, match="aria api key create"):
        server.client(api_key="aria-wrong").models.list()
    assert [m.id for m in server.client(api_key=secret).models.list().data][0] == "auto"
    reply = server.client(api_key=secret).chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=2
    )
    assert reply.usage is not None
    response = server.http().get("/v1/models")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "authentication_error"
    assert server.http().get("/health").status_code == 200  # probes need no key


def test_revoking_a_key_takes_effect_on_the_running_server(guarded: tuple[Server, str]) -> None:
    server, _ = guarded
    keys = KeyStore(server.node.paths.api)
    _, temporary = keys.create("temporary")
    client = server.client(api_key=temporary)
    assert client.models.list().data
    keys.revoke("temporary")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_key_store_never_keeps_secrets(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    key, secret = keys.create("ci")
    stored = (tmp_path / "keys.json").read_text()
    assert secret not in stored and key.sha256 in stored
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0
    assert keys.verify(secret) and not keys.verify(secret + "x")
    with pytest.raises(Conflict, match="exists"):
        keys.create("ci")
    with pytest.raises(NotFound, match="no API key"):
        keys.revoke("nope")
    assert keys.revoke(key.id) == key and keys.all() == []


def test_cors_is_closed_by_default_and_open_to_configured_origins(
    guarded: tuple[Server, str], server: Server
) -> None:
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    allowed = guarded[0].http().options("/v1/chat/completions", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = (
        guarded[0]
        .http()
        .options("/v1/chat/completions", headers={**preflight, "origin": "https://evil.example"})
    )
    assert "access-control-allow-origin" not in other.headers
    closed = server.http().get("/health", headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in closed.headers


def test_non_loopback_without_keys_refuses_to_start(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    import trio

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    node = make_node(tmp_path, {})
    with pytest.raises(ConfigError, match="aria api key create"):
        trio.run(lambda: serve(node, ServerConfig("0.0.0.0", 0)))


def corrupt(path: Path) -> None:
    """Same size, garbage header: the store still lists it, llama.cpp cannot load it."""
    with path.open("r+b") as handle:
        handle.write(b"\0" * 64)


def test_auto_falls_back_when_the_first_choice_fails(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    node = make_node(
        tmp_path,
        {"a-broken": model_files["tiny"], "c-works": model_files["tiny"]},
        node={"profile": "balanced"},
    )
    corrupt(node.store.path_of("a-broken"))
    with running(node) as server:
        response = server.http().post(
            "/v1/chat/completions", json={"model": "auto", "messages": HELLO, "max_tokens": 3}
        )
        assert response.status_code == 200, response.text
        assert response.json()["model"] == "c-works"
        route = response.headers["x-aria-route"]
        assert "model=c-works" in route
        assert "fallbacks=a-broken:backend_unavailable" in route
        # The same through a stream, and the metrics count the fallbacks.
        stream = server.client().chat.completions.create(
            messages=HELLO, model="auto", max_tokens=3, stream=True
        )
        assert {c.model for c in stream} == {"c-works"}
        metrics = server.http().get("/metrics").text
        assert 'aria_fallbacks_total{model="a-broken",reason="backend_unavailable"} 2.0' in metrics
        assert 'aria_route_decisions_total{category="chat",model="c-works"} 2.0' in metrics
        # Naming the broken model explicitly: no fallback, a clear 503.
        broken = server.http().post(
            "/v1/chat/completions", json={"model": "a-broken", "messages": HELLO, "max_tokens": 3}
        )
        assert broken.status_code == 503
        assert "could not start" in broken.json()["error"]["message"]


def test_no_model_at_all_names_the_command_to_run(tmp_path: Path) -> None:
    node = make_node(tmp_path, {})
    with running(node) as server:
        response = server.http().post("/v1/chat/completions", json={"messages": HELLO})
    assert response.status_code == 404
    assert "aria model download SmolLM2-135M-Instruct" in response.json()["error"]["message"]
    assert response.headers.get("x-aria-notice") is None  # errors carry no route headers
    assert isinstance(response, httpx.Response)
