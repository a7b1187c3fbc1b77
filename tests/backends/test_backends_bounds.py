"""Schema and JSON bounds (pure): every way a small body could make the grammar compiler
or a recursive parser do unbounded work is refused, naming the field."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aria.backends.bounds import (
    SchemaBudget,
    SchemaLimits,
    check_grammar_size,
    check_nesting,
    nesting_depth,
)
from aria.errors import InvalidRequest

P = "response_format.json_schema.schema"


def refused(schema: Any, limits: SchemaLimits | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        SchemaBudget(limits or SchemaLimits()).check(schema, P)
    return caught.value


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_a_realistic_tool_schema_passes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 100},
            "days": {"type": "integer"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 16},
            "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{1,6}$"},
            "where": {"$ref": "#/$defs/place"},
        },
        "required": ["city"],
        "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "number"}}}},
    }
    SchemaBudget().check(schema, P)


@pytest.mark.parametrize(
    ("schema", "param"),
    [
        ({"type": "array", "items": {}, "minItems": 10_000_000}, f"{P}.minItems"),
        ({"type": "array", "items": {}, "maxItems": 2_000}, f"{P}.maxItems"),
        ({"type": "string", "minLength": 10**30}, f"{P}.minLength"),
        ({"type": "string", "maxLength": 1e7}, f"{P}.maxLength"),
        ({"type": "object", "minProperties": 5000}, f"{P}.minProperties"),
        (
            {"type": "object", "properties": {"x": {"type": "string", "pattern": "^a{50000}$"}}},
            f"{P}.properties.x.pattern",
        ),
        ({"type": "string", "pattern": "(ab){3,9999999}"}, f"{P}.pattern"),
    ],
)
def test_every_repetition_count_is_capped(schema: dict[str, Any], param: str) -> None:
    error = refused(schema)
    assert error.param == param
    assert "at most 1024" in error.message


def test_depth_is_capped_without_recursion() -> None:
    started = time.process_time()  # CPU time: other engineers' load does not count
    error = refused(nested(100_000))  # a recursive walk would overflow the stack
    assert "deep" in error.message and error.param == P
    assert time.process_time() - started < 1.0
    SchemaBudget().check(nested(30), P)


def test_node_and_property_counts_are_capped() -> None:
    wide = {"anyOf": [{"type": "object"} for _ in range(5000)]}
    assert "objects and arrays" in refused(wide).message
    many = {"type": "object", "properties": {f"p{i}": {} for i in range(300)}}
    assert "300 properties" in refused(many).message
    budget = SchemaBudget()
    for tool in range(4):  # the same budget spans all of a request's schemas
        schema = {"type": "object", "properties": {f"p{i}": {} for i in range(250)}}
        budget.check(schema, f"tools.{tool}.function.parameters")
    with pytest.raises(InvalidRequest, match="properties in all"):
        last = {"type": "object", "properties": {f"q{i}": {} for i in range(30)}}
        budget.check(last, "tools.4.function.parameters")


def test_all_of_references_count_what_they_copy() -> None:
    schema = {
        "$defs": {"big": {"type": "object", "properties": {f"p{i}": {} for i in range(100)}}},
        "allOf": [{"$ref": "#/$defs/big"} for _ in range(5)],
    }
    assert "500 properties" in refused(schema).message


def test_the_grammar_estimate_bounds_many_counts_together() -> None:
    name = "n" * 200  # rule names grow with the path: each repetition copies one
    schema = {
        "type": "object",
        "properties": {
            f"{name}{i}": {"type": "array", "items": {}, "maxItems": 1000} for i in range(20)
        },
    }
    error = refused(schema)
    assert "KiB" in error.message and error.param is not None
    assert error.param.startswith(f"{P}.properties.")


def test_regex_groups_and_length_are_capped() -> None:
    assert "deep" in refused({"type": "string", "pattern": "(" * 40 + ")" * 40}).message
    assert "characters" in refused({"type": "string", "pattern": "a" * 2000}).message


def test_nesting_depth_skips_strings_and_is_linear() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    bomb = "[" * 100_000
    started = time.perf_counter()
    with pytest.raises(InvalidRequest) as caught:
        check_nesting(bomb, "messages.1.tool_calls.0.function.arguments")
    assert caught.value.param == "messages.1.tool_calls.0.function.arguments"
    assert time.perf_counter() - started < 1.0
    check_nesting('{"city": ["Paris"]}', "x")


def test_grammar_size_is_capped() -> None:
    check_grammar_size("root ::= x", "tools")
    with pytest.raises(InvalidRequest, match="KiB grammar"):
        check_grammar_size("x" * (2 * 1024 * 1024), "tools")
