"""The API through the official ``openai`` SDK, against a real server and real workers."""

from __future__ import annotations

import json
import time
from typing import Literal

import jsonschema
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from aria.convert.synthetic_vocab import build_vocab
from tests.api.conftest import Server

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def client(server: Server) -> OpenAI:
    return server.client()


def test_chat_completion(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=10, temperature=0
    )
    assert reply.model == "tiny" and reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 10
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 10


def test_stream_chunks_arrive_while_generating(client: OpenAI) -> None:
    # Load the backend first: the timing below is about streaming, not start-up.
    client.chat.completions.create(model="slow", messages=HELLO, max_tokens=1)
    started = time.perf_counter()
    stamps: list[float] = []
    text = ""
    stream = client.chat.completions.create(
        model="slow", messages=HELLO, max_tokens=150, temperature=0, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter() - started)
            text += chunk.choices[0].delta.content
    assert len(stamps) > 50  # one chunk per token (or small group), not one blob
    first, last = stamps[0], stamps[-1]
    assert first < 0.5 * last, f"first chunk at {first:.3f}s, last at {last:.3f}s"
    whole = client.chat.completions.create(
        model="slow", messages=HELLO, max_tokens=150, temperature=0
    )
    assert whole.choices[0].message.content == text


def test_stream_usage_and_finish_reason(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="tiny",
            messages=HELLO,
            max_tokens=7,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7
    assert all(c.id == chunks[0].id for c in chunks)


def test_stop_sequences(client: OpenAI) -> None:
    full = (
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=40, temperature=0)
        .choices[0]
        .message.content
        or ""
    )
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    reply = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=40, temperature=0, stop=[stop, "@@@"]
    )
    assert reply.choices[0].message.content == full[: full.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_seed_reproducibility(client: OpenAI) -> None:
    def sample(seed: int) -> str | None:
        return (
            client.chat.completions.create(
                model="tiny", messages=HELLO, max_tokens=20, temperature=1.0, seed=seed
            )
            .choices[0]
            .message.content
        )

    assert sample(7) == sample(7)
    assert len({sample(s) for s in range(4)}) > 1


WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def test_tool_calls_are_parsed(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=200,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"  # ARIA makes function calls only (narrows the type)
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Rome")


def test_tool_calls_stream_as_argument_fragments(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=300,
        temperature=0.7,
        seed=3,
        stream=True,
    )
    deltas = [c.choices[0] for c in stream if c.choices]
    fragments = [call for d in deltas for call in d.delta.tool_calls or []]
    assert fragments and fragments[0].index == 0
    for index in {f.index for f in fragments}:
        head, *rest = [f for f in fragments if f.index == index]
        assert head.id and head.type == "function"
        assert head.function is not None and head.function.name == "get_weather"
        assert head.function.arguments == ""  # OpenAI's shape: the name, then the arguments
        assert rest and all(f.id is None and f.function and f.function.name is None for f in rest)
        arguments = "".join(f.function.arguments or "" for f in rest if f.function)
        assert json.loads(arguments)["city"] in ("Paris", "Rome")
    assert deltas[-1].finish_reason == "tool_calls"


class Weather(BaseModel):
    """Weather in a city."""

    city: Literal["Paris", "Rome"]


def test_the_sdk_stream_helper_accumulates_and_parses_tool_calls(client: OpenAI) -> None:
    tool = openai.pydantic_function_tool(Weather, name="get_weather")
    events = []
    with client.chat.completions.stream(
        model="tiny",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=300,
        temperature=0.7,
        seed=3,
    ) as stream:
        for event in stream:
            events.append(event.type)
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in events
    assert "tool_calls.function.arguments.done" in events
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(call.function.parsed_arguments, Weather)
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_round_trip_with_tool_messages(client: OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = client.chat.completions.create(
        model="tiny",
        max_tokens=5,
        temperature=0,
        messages=messages,
        tools=[WEATHER],
        tool_choice="none",
    )
    assert reply.choices[0].message.content


def test_json_schema_response_validates(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 16},
            "age": {"type": "integer", "minimum": 0},
            "pet": {"enum": ["cat", "dog", None]},
        },
        "required": ["name", "age", "pet"],
        "additionalProperties": False,
    }
    for seed in range(3):
        reply = client.chat.completions.create(
            model="tiny",
            messages=HELLO,
            max_tokens=300,
            temperature=0.9,
            seed=seed,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": schema},
            },
        )
        jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)


def test_json_object_response_parses(client: OpenAI) -> None:
    # An untrained model never ends a free string by itself: logit_bias nudges it towards
    # closing quotes and braces (the grammar decides where they are allowed).
    tokens = build_vocab().tokens
    bias = {str(tokens.index(t)): 10 for t in ('"', "<0x22>", "}", "<0x7D>")}
    reply = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=400,
        temperature=0,
        logit_bias=bias,
        response_format={"type": "json_object"},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_text_completions(client: OpenAI) -> None:
    reply = client.completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=8, temperature=0, echo=True
    )
    assert reply.choices[0].text.startswith("Once upon a time")
    assert reply.usage is not None and reply.usage.completion_tokens == 8
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="tiny", prompt="Once upon a time", max_tokens=8, temperature=0, stream=True
        )
        if c.choices
    )
    assert "Once upon a time" + streamed == reply.choices[0].text


def test_embeddings(client: OpenAI) -> None:
    result = client.embeddings.create(model="tiny", input=["red apple", "green pear", "x"])
    assert [d.index for d in result.data] == [0, 1, 2]
    assert {len(d.embedding) for d in result.data} == {256}
    assert result.usage.prompt_tokens > 3
    floats = client.embeddings.create(model="tiny", input="red apple", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-6)


def test_models_list(client: OpenAI, server: Server) -> None:
    models = {m.id: m for m in client.models.list().data}
    assert {"auto", "tiny", "slow"} <= set(models)
    raw = server.http().get("/v1/models").json()["data"]
    tiny = next(m for m in raw if m["id"] == "tiny")
    assert tiny["tier"] == "quality" and tiny["licence"]
    assert tiny["routable"] is False  # the default profile enables the efficiency tier only


def test_auto_routes_to_the_profile_default_with_a_notice(server: Server) -> None:
    response = server.http().post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
    assert response.status_code == 404  # no efficiency model, no embedded default installed
    assert "aria model download SmolLM2-135M-Instruct" in response.json()["error"]["message"]


def test_health_and_metrics(server: Server, client: OpenAI) -> None:
    client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=3)
    health = server.http().get("/health").json()
    assert health["status"] == "ok"
    assert any(b["model"] == "tiny" and b["state"] == "ready" for b in health["backends"])
    text = server.http().get("/metrics").text
    for name in (
        "aria_requests_total",
        "aria_completion_tokens_total",
        "aria_time_to_first_token_seconds_bucket",
        "aria_tokens_per_second_bucket",
        'aria_backend_queue_depth{model="tiny"}',
        "aria_backend_state",
        "aria_errors_total",
    ):
        assert name in text
