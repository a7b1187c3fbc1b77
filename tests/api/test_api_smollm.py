"""The same basics with the real embedded default model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import platformdirs
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths
from aria.store import ModelStore
from tests.api.conftest import Server, make_node, running

pytestmark = pytest.mark.slow

MODEL = "SmolLM2-135M-Instruct"
DEV_COPY = Path("/work/models/SmolLM2-135M-Instruct.Q4_1.gguf")
FRANCE: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me the capital of France."}
]


def smollm_file() -> Path | None:
    """The user's installed embedded model, else the development copy."""
    home = AriaPaths(Path(platformdirs.user_data_dir("aria", "aria")))
    store = ModelStore(home, load_catalog(), load_denylist())
    if store.is_installed(MODEL):
        return store.path_of(MODEL)
    return DEV_COPY if DEV_COPY.is_file() else None


@pytest.fixture(scope="module")
def smollm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    source = smollm_file()
    if source is None:
        pytest.skip(f"{MODEL} is not installed (`aria model download {MODEL}`) and no dev copy")
    node = make_node(tmp_path_factory.mktemp("smollm_home"), {})
    node.store.import_file(source)  # recognised by its sha256 as the catalog's model
    with running(node) as server:
        yield server


def test_answers_the_capital_of_france(smollm: Server) -> None:
    reply = smollm.client().chat.completions.create(
        model=MODEL, messages=FRANCE, max_tokens=30, temperature=0
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"


def test_auto_serves_the_embedded_default_with_a_notice(smollm: Server) -> None:
    response = smollm.http().post(
        "/v1/chat/completions", json={"messages": FRANCE, "max_tokens": 30, "temperature": 0}
    )
    assert response.status_code == 200 and response.json()["model"] == MODEL
    assert "Paris" in response.json()["choices"][0]["message"]["content"]
    assert "embedded default" in response.headers["x-aria-notice"]


def test_streaming_matches_and_counts_usage(smollm: Server) -> None:
    chunks = list(
        smollm.client().chat.completions.create(
            model=MODEL,
            messages=FRANCE,
            max_tokens=30,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 5


def test_json_schema_and_tools(smollm: Server) -> None:
    client = smollm.client()
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "maxLength": 40},
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=MODEL,
        messages=FRANCE,
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)
    tool: ChatCompletionToolParam = {
        "type": "function",
        "function": {
            "name": "lookup_capital",
            "parameters": {
                "type": "object",
                "properties": {"country": {"type": "string", "maxLength": 40}},
                "required": ["country"],
                "additionalProperties": False,
            },
        },
    }
    called = client.chat.completions.create(
        model=MODEL,
        messages=FRANCE,
        tools=[tool],
        tool_choice="required",
        max_tokens=80,
        temperature=0,
    )
    call = (called.choices[0].message.tool_calls or [])[0]
    assert call.type == "function"
    assert call.function.name == "lookup_capital"
    assert isinstance(json.loads(call.function.arguments)["country"], str)


def test_embeddings_rank_related_text_closer(smollm: Server) -> None:
    data = (
        smollm.client()
        .embeddings.create(
            model=MODEL,
            input=[
                "Paris is the capital of France",
                "The French capital is Paris",
                "Photosynthesis converts light into chemical energy",
            ],
        )
        .data
    )
    a, b, c = (d.embedding for d in data)

    def cosine(x: list[float], y: list[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert cosine(a, b) > cosine(a, c)
