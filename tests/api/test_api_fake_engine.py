"""The API end to end on the model-less fake engine: real server, real sockets, real worker
processes, no llama.cpp. (The same behaviours against llama.cpp: test_api_openai.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from tests.api.conftest import Server, make_node, running

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def fake(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("fake_home"), model_files, engine="fake")
    with running(node) as live:
        yield live


def test_chat_streams_and_counts_with_no_llama_cpp(fake: Server) -> None:
    client = fake.client()
    raw = client.chat.completions.with_raw_response.create(
        model="tiny", messages=HELLO, max_tokens=6, seed=3, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    assert raw.headers["x-aria-route"].startswith("model=tiny; where=local")
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 6
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    whole = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=6, seed=3)
    assert whole.choices[0].message.content == text  # the same seed, the same words
    assert fake.http().get("/health").json()["backends"][0]["engine"] == "fake"


def test_completions_and_the_context_window(fake: Server) -> None:
    client = fake.client()
    done = client.completions.create(model="tiny", prompt="Once upon", max_tokens=4, echo=True)
    assert done.choices[0].text.startswith("Once upon") and done.usage is not None
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x " * 6000}], max_tokens=4
        )
    assert refused.value.code == "context_length_exceeded"


class Weather(BaseModel):
    city: Literal["Paris", "Rome"]


def test_the_sdk_stream_helper_parses_a_forced_tool_call(fake: Server) -> None:
    tool = openai.pydantic_function_tool(Weather, name="get_weather")
    with fake.client().chat.completions.stream(
        model="tiny",
        messages=HELLO,
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
    ) as stream:
        final = stream.get_final_completion()
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and call.function.parsed_arguments == Weather(city="Paris")


def test_a_placement_the_request_asks_for_is_checked(fake: Server) -> None:
    http = fake.http()
    body = {"model": "tiny", "messages": HELLO, "max_tokens": 2}
    ok = http.post("/v1/chat/completions", json=body, headers={"x-aria-placement": "Local-Only"})
    assert ok.status_code == 200
    bad = http.post("/v1/chat/completions", json=body, headers={"x-aria-placement": "mars"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["param"] == "x-aria-placement" and "local-first" in error["message"]
    assert json.loads(ok.text)["choices"][0]["message"]["content"]
