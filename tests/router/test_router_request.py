"""RouteRequest: what the router reads from an OpenAI body, and bad bodies as clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from aria.errors import InvalidRequest
from aria.router import RouteRequest, estimate_tokens


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": list(messages), **extra}


def test_the_last_user_message_is_the_query() -> None:
    request = RouteRequest.from_openai(
        chat(
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "How do I sort a dict by value?"},
        )
    )
    assert request.text == "How do I sort a dict by value?"
    assert not (request.has_image or request.has_tools or request.json_mode)
    # Every message counts toward the prompt, not only the query.
    assert request.prompt_tokens > estimate_tokens("How do I sort a dict by value?") + 10


def test_image_parts_are_detected_and_text_parts_joined() -> None:
    request = RouteRequest.from_openai(
        chat(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What breed"},
                    {"type": "image_url", "image_url": {"url": "https://example.org/dog.png"}},
                    {"type": "text", "text": "is this dog?"},
                ],
            }
        )
    )
    assert request.has_image
    assert request.text == "What breed\nis this dog?"


@pytest.mark.parametrize(
    ("extra", "tools", "json_mode"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, True, False),
        ({"functions": [{"name": "f"}]}, True, False),
        ({"tools": [{"type": "function"}], "tool_choice": "none"}, False, False),
        ({"response_format": {"type": "json_object"}}, False, True),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, False, True),
        ({"response_format": {"type": "text"}}, False, False),
    ],
)
def test_tools_and_json_formats(extra: dict[str, Any], tools: bool, json_mode: bool) -> None:
    request = RouteRequest.from_openai(chat({"role": "user", "content": "hi"}, **extra))
    assert (request.has_tools, request.json_mode) == (tools, json_mode)
    assert request.needs_structured_output is (tools or json_mode)


def test_tool_schemas_count_toward_the_prompt() -> None:
    plain = RouteRequest.from_openai(chat({"role": "user", "content": "hi"}))
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(50)}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    with_tools = RouteRequest.from_openai(chat({"role": "user", "content": "hi"}, tools=[tool]))
    assert with_tools.prompt_tokens > plain.prompt_tokens + 200


def test_completions_prompts_and_max_tokens() -> None:
    request = RouteRequest.from_openai(
        {"prompt": ["def add(a, b):", "    return"], "max_tokens": 64}
    )
    assert request.text == "def add(a, b):\n    return"
    assert request.max_tokens == 64
    newer = RouteRequest.from_openai(
        chat({"role": "user", "content": "x"}, max_completion_tokens=9)
    )
    assert newer.max_tokens == 9


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": "hello"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["hello"]}, "messages"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages"),
        ({"messages": [{"role": "user", "content": ["part"]}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": "all"}, "tools"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}, "max_tokens"),
        ({"prompt": 12}, "messages"),
        ({}, "messages"),
    ],
)
def test_malformed_bodies_raise_one_clear_error(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        RouteRequest.from_openai(body)
    assert caught.value.param == param
    assert caught.value.http_status == 400


def test_token_estimates_are_generous_for_other_scripts() -> None:
    assert estimate_tokens("") == 0
    english = "The quick brown fox jumps over the lazy dog."
    assert len(english) / 5 < estimate_tokens(english) < len(english) / 3
    chinese = "如何用Python读取一个CSV文件"
    assert estimate_tokens(chinese) >= len("如何用读取一个文件")


def test_null_content_and_no_user_message() -> None:
    request = RouteRequest.from_openai(
        chat({"role": "system", "content": "Be brief."}, {"role": "assistant", "content": None})
    )
    assert request.text == ""
    assert request.prompt_tokens > 0
