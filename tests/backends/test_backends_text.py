"""Text in and out of a model: stop sequences, UTF-8 across tokens, tool-call parsing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aria.backends.decoding import TextAssembler
from aria.backends.toolcalls import (
    ContentDelta,
    ParsedToolCall,
    ToolCallParser,
    prepare_messages,
)


def feed_all(assembler: TextAssembler, pieces: list[bytes]) -> str:
    out = "".join(assembler.feed(piece) for piece in pieces)
    return out + assembler.flush()


def test_stop_sequence_spanning_tokens_is_cut_and_never_emitted() -> None:
    assembler = TextAssembler(["</end>"])
    emitted = [assembler.feed(p) for p in [b"Hello </", b"en", b"d> more"]]
    assert emitted == ["Hello ", "", ""]
    assert assembler.stopped
    assert assembler.flush() == ""


def test_partial_stop_prefix_is_released_when_it_does_not_complete() -> None:
    assembler = TextAssembler(["STOP"])
    assert assembler.feed(b"abc ST") == "abc "
    assert assembler.feed(b"AR") == "STAR"
    assert not assembler.stopped


def test_multibyte_character_split_across_tokens() -> None:
    data = "héllo 世界".encode()
    assert feed_all(TextAssembler(), [data[i : i + 1] for i in range(len(data))]) == "héllo 世界"


@given(text=st.text(max_size=60), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_any_split_gives_the_text_up_to_the_first_stop(text: str, cuts: list[int]) -> None:
    data = text.encode()
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    expected = text.split("zz", 1)[0]
    assert feed_all(TextAssembler(["zz"]), pieces) == expected


def call(name: str, **arguments: object) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def parse(pieces: list[str]) -> list[ContentDelta | ParsedToolCall]:
    parser = ToolCallParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    return events + parser.finish()


def test_plain_text_streams_once_it_cannot_be_a_call() -> None:
    parser = ToolCallParser()
    assert parser.feed("<t") == []  # could still become <tool_call>
    assert parser.feed("able>") == [ContentDelta("<table>")]
    assert parser.feed(" rows") == [ContentDelta(" rows")]


def test_calls_are_parsed_token_by_token() -> None:
    text = call("get_weather", city="Paris") + "\n" + call("get_time", zone="CET")
    events = parse([text[i : i + 3] for i in range(0, len(text), 3)])
    assert events == [
        ParsedToolCall(0, "get_weather", '{"city": "Paris"}'),
        ParsedToolCall(1, "get_time", '{"zone": "CET"}'),
    ]


def test_repeated_call_is_dropped_and_flagged() -> None:
    parser = ToolCallParser()
    events = parser.feed(call("f", x=1) + "\n" + call("f", x=1))
    assert events == [ParsedToolCall(0, "f", '{"x": 1}')]
    assert parser.repeating


def test_truncated_call_comes_back_as_content() -> None:
    assert parse(['<tool_call>\n{"name": "f", "argu']) == [
        ContentDelta('<tool_call>\n{"name": "f", "argu')
    ]


def test_messages_for_a_template_without_tool_support() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "content": "42", "tool_call_id": "1"},
    ]
    prepared = prepare_messages(messages, tools, template="{{ messages }}")
    assert prepared[0]["role"] == "system" and '"name": "f"' in prepared[0]["content"]
    assert prepared[2]["content"] == call("f", a=1).replace('"a": 1', '"a": 1')
    assert "tool_calls" not in prepared[2]
    assert prepared[3] == {"role": "tool", "content": "42", "tool_call_id": "1"}


def test_unparsable_earlier_call_arguments_are_shown_as_sent() -> None:
    for arguments in ("[" * 100_000, "not json"):  # RecursionError / ValueError inside
        messages = [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": arguments}}],
            }
        ]
        prepared = prepare_messages(messages, [], template="{{ messages }}")
        assert prepared[0]["content"].startswith("<tool_call>")
        assert arguments[:50] in prepared[0]["content"]
