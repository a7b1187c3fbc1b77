"""Compile a :class:`GrammarSpec` into a llama.cpp GBNF grammar (worker side).

JSON Schema conversion is llama-cpp-python's own ``SchemaConverter``; ARIA only adds
the tool-call framing from :mod:`aria.backends.toolcalls`, and measures every schema
against :mod:`aria.backends.bounds` first (the converter writes repetitions out, so an
unbounded count is unbounded memory) and the grammar it produced after. Runs in the
worker process (importing ``llama_cpp`` loads the native library).
"""

from __future__ import annotations

import json
from typing import Any

from aria.backends.bounds import DEFAULT_LIMITS, SchemaBudget, SchemaLimits, check_grammar_size
from aria.backends.protocol import GrammarSpec
from aria.backends.toolcalls import CALL_CLOSE, CALL_OPEN
from aria.errors import InvalidRequest

__all__ = ["compile_grammar", "tool_call_schema"]

# Free text for tool_choice="auto": anything that does not start with "<", so the
# first character tells a tool call from an answer.
_FREE_TEXT = r"free-text ::= [^<\x00] [^\x00]*"
_LAX_CHAR = r'[^"\\]'
_JSON_CHAR = r'[^"\\\x7F\x00-\x1F]'


def tool_call_schema(tools: tuple[dict[str, Any], ...], name: str | None) -> dict[str, Any]:
    """The JSON Schema of one call object: ``{"name": ..., "arguments": {...}}``.

    Raises:
        InvalidRequest: ``name`` is not one of the tools.
    """
    choices = []
    for tool in tools:
        function = tool.get("function", {})
        if name is not None and function.get("name") != name:
            continue
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        choices.append(
            {
                "type": "object",
                "properties": {"name": {"const": function.get("name")}, "arguments": parameters},
                "required": ["name", "arguments"],
            }
        )
    if not choices:
        raise InvalidRequest(f"tool_choice names function {name!r}, which is not in tools")
    return choices[0] if len(choices) == 1 else {"oneOf": choices}


def compile_grammar(spec: GrammarSpec, limits: SchemaLimits = DEFAULT_LIMITS) -> str:
    """GBNF text for ``spec``.

    Raises:
        InvalidRequest: a schema exceeds ``limits``, uses something the converter cannot
            express, or compiles to a grammar larger than ``limits.max_grammar_bytes``.
    """
    from llama_cpp.llama_grammar import JSON_GBNF

    if spec.kind == "json_object":
        return JSON_GBNF
    param = "response_format" if spec.kind == "json_schema" else "tools"
    _check_bounds(spec, SchemaBudget(limits))
    try:
        if spec.kind == "json_schema":
            grammar = _convert(spec.schema or {}, "")  # "" names the root rule
            check_grammar_size(grammar, param, limits)
            return grammar
        call_rules = _convert(tool_call_schema(spec.tools, spec.name), "call")
    except InvalidRequest:
        raise
    except Exception as exc:  # the converter raises bare Exceptions, ValueErrors, RecursionErrors
        raise InvalidRequest(
            f"cannot turn the JSON schema into a grammar: {exc}"[:300], param=param
        ) from None
    check_grammar_size(call_rules, param, limits)
    framing = [
        f"call-block ::= {_literal(CALL_OPEN + chr(10))} call {_literal(chr(10) + CALL_CLOSE)}",
        "calls ::= call-block" if spec.single else r'calls ::= call-block ("\n" call-block)*',
    ]
    if spec.mode == "auto":
        framing += ["root ::= calls | free-text", _FREE_TEXT]
    else:
        framing.append("root ::= calls")
    return call_rules + "\n" + "\n".join(framing)


def _check_bounds(spec: GrammarSpec, budget: SchemaBudget) -> None:
    if spec.kind == "json_schema":
        budget.check(spec.schema or {}, "response_format.json_schema.schema")
        return
    for index, tool in enumerate(spec.tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        parameters = function.get("parameters") if isinstance(function, dict) else None
        if parameters is not None:
            budget.check(parameters, f"tools.{index}.function.parameters")


def _convert(schema: dict[str, Any], name: str) -> str:
    from llama_cpp.llama_grammar import SchemaConverter

    untyped: Any = SchemaConverter  # llama-cpp-python's converter has no annotations
    converter = untyped(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    resolved = converter.resolve_refs(schema, "request")
    converter.visit(resolved, name)
    return _json_strings(str(converter.format_grammar()))


def _json_strings(grammar: str) -> str:
    """JSON forbids raw control characters in strings; the converter's ``char`` rule
    allows them (``[^"\\]``), so a model could emit text no JSON parser accepts."""
    lines = grammar.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("char ::= "):
            lines[index] = line.replace(_LAX_CHAR, _JSON_CHAR, 1)
    return "\n".join(lines)


def _literal(text: str) -> str:
    return json.dumps(text)
