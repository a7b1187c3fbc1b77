"""Every bad input gets OpenAI's error object with the right status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.api.conftest import Server

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": HELLO, "max_tokens": 4, **fields}


def expect(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture(scope="module")
def http(server: Server) -> httpx.Client:
    return server.http()


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(
        CHAT,
        content=b'{"model": "tiny", "messages": [',
        headers={"content-type": "application/json"},
    )
    error = expect(response, 400, "invalid_request")
    assert "not valid JSON" in error["message"]
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(temperature="hot"), "temperature"),
        (chat(messages=[]), "messages"),
        (chat(messages="hello"), "messages"),
        (chat(messages=[{"role": "wizard", "content": "x"}]), "messages.0"),
        (chat(messages=[{"role": "user"}]), "messages.0.content"),
        (chat(max_tokens=-1), "max_tokens"),
        (chat(max_tokens=10**12), "max_tokens"),
        (chat(n=2), "n"),
        (chat(top_p=0), "top_p"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(logit_bias={"the": 1}), "logit_bias"),
        (chat(logit_bias={"\u00b2": 1}), "logit_bias"),  # a digit to str.isdigit, not to int()
        (
            chat(tools=[{"type": "function", "function": {"name": "bad name!"}}]),
            "tools.0.function.name",
        ),
        ([1, 2, 3], None),
    ],
)
def test_wrong_types_and_ranges_are_422(http: httpx.Client, body: Any, param: str | None) -> None:
    error = expect(http.post(CHAT, json=body), 422, "invalid_value")
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            chat(
                tools=[
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": {"x": {"type": 12}}},
                        },
                    }
                ]
            ),
            "not a valid JSON Schema",
        ),
        (
            chat(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "wat"}},
                }
            ),
            "not a valid JSON Schema",
        ),
        (chat(tool_choice="required"), "tool_choice requires tools"),
        (
            chat(
                tools=[{"type": "function", "function": {"name": "f"}}],
                tool_choice={"type": "function", "function": {"name": "g"}},
            ),
            "not in tools",
        ),
        (
            chat(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                    }
                ]
            ),
            "text only",
        ),
        (chat(logprobs=True), "logprobs"),
    ],
)
def test_semantic_errors_are_400(http: httpx.Client, body: Any, needle: str) -> None:
    assert needle in expect(http.post(CHAT, json=body), 400)["message"]


def test_prompt_longer_than_the_context_window(http: httpx.Client) -> None:
    long = [{"role": "user", "content": "word " * 3000}]
    error = expect(http.post(CHAT, json=chat(messages=long)), 400, "context_length_exceeded")
    assert "context window is 2048 tokens" in error["message"]
    error = expect(http.post(CHAT, json=chat(max_tokens=5000)), 400, "context_length_exceeded")
    assert error["param"] == "max_tokens"


def test_unknown_and_missing_models_are_404(http: httpx.Client, server: Server) -> None:
    error = expect(http.post(CHAT, json=chat(model="no-such-model")), 404, "model_not_found")
    assert "aria model download" in error["message"]
    error = expect(
        http.post(CHAT, json=chat(model="SmolLM2-1.7B-Instruct")), 404, "model_not_installed"
    )
    assert "aria model download SmolLM2-1.7B-Instruct" in error["message"]
    with pytest.raises(openai.NotFoundError, match="aria model download"):
        server.client().embeddings.create(model="no-such-model", input="x")


def test_oversized_bodies_are_413_without_reading_them(http: httpx.Client) -> None:
    big = b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    expect(
        http.post(CHAT, content=big, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )

    def chunked() -> Any:  # no Content-Length: the limit counts what arrives
        yield b'{"pad": "'
        for _ in range(6):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    expect(
        http.post(CHAT, content=chunked(), headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )


def test_unknown_routes_and_methods(http: httpx.Client) -> None:
    expect(http.get("/v1/nothing"), 404, "not_found")
    expect(http.get(CHAT), 405, "method_not_allowed")


def test_errors_are_counted(http: httpx.Client) -> None:
    http.post(CHAT, json=chat(model="no-such-model"))
    assert 'aria_errors_total{kind="model_not_found"}' in http.get("/metrics").text


def test_sdk_raises_typed_errors(server: Server) -> None:
    client = server.client()
    with pytest.raises(openai.BadRequestError, match="context window"):
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=100_000)
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="tiny", messages=[], max_tokens=3)
