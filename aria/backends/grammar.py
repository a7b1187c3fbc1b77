"""Compile a :class:`GrammarSpec` into a llama.cpp GBNF grammar (worker side).

JSON Schema conversion is llama-cpp-python's own ``SchemaConverter``; ARIA only adds
the tool-call framing from :mod:`aria.backends.toolcalls`. Runs in the worker process
(importing ``llama_cpp`` loads the native library).
"""

from __future__ import annotations

import json
from typing import Any

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


def compile_grammar(spec: GrammarSpec) -> str:
    """GBNF text for ``spec``.

    Raises:
        InvalidRequest: the schema uses something the converter cannot express.
    """
    from llama_cpp.llama_grammar import JSON_GBNF

    if spec.kind == "json_object":
        return JSON_GBNF
    try:
        if spec.kind == "json_schema":
            return _convert(spec.schema or {}, "")  # "" names the root rule
        call_rules = _convert(tool_call_schema(spec.tools, spec.name), "call")
    except InvalidRequest:
        raise
    except Exception as exc:  # the converter raises bare Exceptions / ValueErrors
        raise InvalidRequest(f"cannot turn the JSON schema into a grammar: {exc}") from None
    framing = [
        f"call-block ::= {_literal(CALL_OPEN + chr(10))} call {_literal(chr(10) + CALL_CLOSE)}",
        "calls ::= call-block" if spec.single else r'calls ::= call-block ("\n" call-block)*',
    ]
    if spec.mode == "auto":
        framing += ["root ::= calls | free-text", _FREE_TEXT]
    else:
        framing.append("root ::= calls")
    return call_rules + "\n" + "\n".join(framing)


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
