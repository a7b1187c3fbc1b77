"""Spot checks (pure): what is checkable, answers rebuilt from chunks, comparisons, reputation."""

from __future__ import annotations

import json

import pytest

from aria.ledger import Answer, answer_from_chunks, checkable, compare, reputation, sampled


def _chunk(delta: dict[str, object], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_only_greedy_single_answers_are_checkable() -> None:
    assert checkable({"temperature": 0})
    assert checkable({"temperature": 0.0, "n": 1})
    assert not checkable({})  # the default samples
    assert not checkable({"temperature": 0.7})
    assert not checkable({"temperature": 0, "n": 2})
    assert not checkable({"temperature": False})
    assert not checkable({"temperature": "0"})


def test_sampling_rate() -> None:
    assert sampled(0.1, 0.05) and not sampled(0.1, 0.1) and not sampled(0.0, 0.0)
    assert sampled(1.0, 0.999)


def test_answers_rebuilt_from_stream_chunks_and_from_a_whole_response() -> None:
    stream = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({}, "stop"),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 3}}),
        "[DONE]",
    ]
    whole = json.dumps(
        {
            "choices": [
                {"message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
            ]
        }
    )
    assert answer_from_chunks(stream) == answer_from_chunks([whole]) == Answer("Hello", (), "stop")


def test_tool_calls_compare_by_name_and_arguments_not_by_id() -> None:
    def call(call_id: str) -> list[str]:
        return [
            _chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": call_id, "function": {"name": "f", "arguments": '{"a"'}}
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            _chunk({}, "tool_calls"),
        ]

    one, two = answer_from_chunks(call("call_1")), answer_from_chunks(call("call_2"))
    assert one.tool_calls == (("f", '{"a":1}'),)
    assert compare(one, two).verdict == "match" and one.sha256 == two.sha256


@pytest.mark.parametrize(
    ("expected", "received", "index"),
    [
        (Answer("Paris is nice"), Answer("Paris is rice"), 9),
        (Answer("Paris"), Answer("Paris, France"), 5),
        (Answer("Paris", (), "stop"), Answer("Paris", (), "length"), None),
        (Answer("x", (("f", "{}"),)), Answer("x"), None),
    ],
)
def test_any_difference_is_a_mismatch(
    expected: Answer, received: Answer, index: int | None
) -> None:
    result = compare(expected, received)
    assert result.verdict == "mismatch" and result.first_difference == index
    assert expected.sha256 != received.sha256


def test_answers_round_trip_through_json() -> None:
    answer = Answer("é", (("f", "{}"),), "tool_calls")
    assert Answer.from_json(json.loads(json.dumps(answer.to_json()))) == answer


def test_reputation() -> None:
    assert reputation(0, 0) == 0.5
    assert reputation(0, 1) < 0.05
    assert reputation(10, 0) > 0.9
    assert reputation(100, 1) == pytest.approx(101 / 122)
    assert reputation(5, 1) < reputation(5, 0) and reputation(6, 1) > reputation(5, 1)


def test_a_text_completions_answer_is_rebuilt_from_its_text() -> None:
    chunks = [
        json.dumps({"choices": [{"index": 0, "text": "Once", "finish_reason": None}]}),
        json.dumps({"choices": [{"index": 0, "text": " upon", "finish_reason": "length"}]}),
        "[DONE]",
    ]
    assert answer_from_chunks(chunks) == Answer("Once upon", (), "length")
