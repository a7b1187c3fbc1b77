"""Bounds on client JSON before it reaches a recursive parser or the grammar compiler (pure).

llama-cpp-python's ``SchemaConverter`` writes every repetition out in Python
(``minItems: n`` becomes ``n`` copies of the item rule, ``maxLength: n`` ``n`` nested
optional groups, a regex ``{m,n}`` the same), so llama.cpp's own repetition cap never
sees the count: a 200-byte schema with ``minItems: 10000000`` took 1.2 GB. Other costs
grow faster than the schema: optional properties are quadratic per object, and a
``$ref`` inside ``allOf`` copies the referenced properties each time. Deep nesting
overflows the recursion of ``jsonschema`` and ``json``. So each schema is measured
here, before anything compiles it, against :class:`SchemaLimits`; one
:class:`SchemaBudget` spans all the schemas of a request (every tool's parameters end
up in one grammar). Refusals are ``InvalidRequest`` naming the field, e.g.
``tools.0.function.parameters.properties.tags.minItems``.

The API checks at the edge (a 400 before any backend is touched); the worker checks
again before compiling, and the compiled grammar's size too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aria.errors import InvalidRequest

__all__ = [
    "DEFAULT_LIMITS",
    "SchemaBudget",
    "SchemaLimits",
    "check_grammar_size",
    "check_nesting",
    "nesting_depth",
]

# Keywords whose value the converter turns into that many copies of something (or that
# state a count: cheap to cap with the others, and no real schema needs more).
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
# {m}, {m,} and {m,n} in a regex; unescaped or not, every one is counted (a false positive
# costs nothing: the count is only compared with the limit).
_QUANTIFIER = re.compile(r"\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}")
# Rule names the converter derives from a path grow by a key and a suffix per level.
_NAME_STEP = 20


@dataclass(frozen=True)
class SchemaLimits:
    """What one request's schemas may cost (the defaults suit any real tool schema).

    ``max_grammar_bytes`` bounds both the estimate made before compiling (each repetition
    costs its count times the rule name it repeats) and the compiled GBNF text.
    """

    max_depth: int = 64
    max_nodes: int = 4096
    max_repetition: int = 1024
    max_properties: int = 256
    max_total_properties: int = 1024
    max_pattern_length: int = 1024
    max_pattern_groups: int = 32
    max_grammar_bytes: int = 1024 * 1024


DEFAULT_LIMITS = SchemaLimits()


@dataclass
class _Cost:
    nodes: int = 0
    properties: int = 0
    grammar_bytes: int = 0


class SchemaBudget:
    """Measures the JSON Schemas of one request against shared :class:`SchemaLimits`."""

    def __init__(self, limits: SchemaLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._cost = _Cost()

    def check(self, schema: Any, param: str) -> None:
        """Refuse ``schema`` (found at ``param``) if it, with what came before, is too costly.

        Raises:
            InvalidRequest: too deep, too many nodes or properties, a count or regex
                quantifier above the limit, or a grammar estimate above the limit.
        """
        for node, path, name_len in _walk(schema, self.limits.max_depth, param):
            self._cost.nodes += 1
            if self._cost.nodes > self.limits.max_nodes:
                raise InvalidRequest(
                    f"{param} is too large: the request's schemas have more than "
                    f"{self.limits.max_nodes} objects and arrays",
                    param=param,
                )
            if isinstance(node, dict):
                self._check_object(node, schema, path, name_len)

    def _check_object(self, node: dict[str, Any], root: Any, path: str, name_len: int) -> None:
        limits = self.limits
        for key in _COUNTS:
            if key in node:
                self._repeat(node[key], f"{path}.{key}", name_len)
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            self._check_pattern(pattern, f"{path}.pattern", name_len)
        properties = node.get("properties")
        count = len(properties) if isinstance(properties, dict) else 0
        all_of = node.get("allOf")
        if isinstance(all_of, list):  # the converter copies each component's properties
            count += sum(_component_properties(item, root) for item in all_of)
        if count > limits.max_properties:
            raise InvalidRequest(
                f"{path} has {count} properties; at most {limits.max_properties} per object "
                "are supported",
                param=path,
            )
        self._cost.properties += count
        if self._cost.properties > limits.max_total_properties:
            raise InvalidRequest(
                f"{path}: the request's schemas have more than {limits.max_total_properties} "
                "properties in all",
                param=path,
            )

    def _repeat(self, value: Any, param: str, name_len: int, unit: int = 0) -> None:
        """A repetition the converter will write out ``value`` times."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return  # not a count: jsonschema's own check refuses it
        if value > self.limits.max_repetition:
            raise InvalidRequest(
                f"{param} is {value}; at most {self.limits.max_repetition} is supported "
                "(the output grammar writes every repetition out)",
                param=param,
            )
        self._cost.grammar_bytes += max(0, int(value)) * (name_len + unit + 8)
        if self._cost.grammar_bytes > self.limits.max_grammar_bytes:
            raise InvalidRequest(
                f"{param}: the request's schemas would compile to a grammar of more than "
                f"{self.limits.max_grammar_bytes // 1024} KiB; use smaller counts",
                param=param,
            )

    def _check_pattern(self, pattern: str, param: str, name_len: int) -> None:
        limits = self.limits
        if len(pattern) > limits.max_pattern_length:
            raise InvalidRequest(
                f"{param} is {len(pattern)} characters; at most {limits.max_pattern_length} "
                "are supported",
                param=param,
            )
        if _group_depth(pattern) > limits.max_pattern_groups:
            raise InvalidRequest(
                f"{param} nests groups more than {limits.max_pattern_groups} deep", param=param
            )
        for match in _QUANTIFIER.finditer(pattern):  # repeats a char or a rule's name
            for number in match.groups():
                if number:
                    self._repeat(int(number), param, name_len, unit=2)


def _walk(schema: Any, max_depth: int, param: str) -> Iterator[tuple[Any, str, int]]:
    """Every dict and list in ``schema``: (node, its path, a bound on its rule name's length).

    Iterative, so a hostile depth cannot overflow the stack before it is refused.
    """
    stack: list[tuple[Any, str, int, int]] = [(schema, param, 1, 0)]
    while stack:
        node, path, depth, name_len = stack.pop()
        if depth > max_depth:
            raise InvalidRequest(
                f"{param} nests objects and arrays more than {max_depth} deep", param=param
            )
        yield node, path, name_len
        items: list[tuple[str, Any]]
        if isinstance(node, dict):
            items = [(str(key), value) for key, value in node.items()]
        else:
            items = [(str(index), value) for index, value in enumerate(node)]
        for key, value in reversed(items):
            if isinstance(value, dict | list):
                stack.append((value, f"{path}.{key}", depth + 1, name_len + len(key) + _NAME_STEP))


def _component_properties(component: Any, root: Any) -> int:
    """Properties an ``allOf`` component contributes (following one local ``$ref``)."""
    if not isinstance(component, dict):
        return 0
    options = component.get("anyOf")
    parts = options if isinstance(options, list) else [component]
    total = 0
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            part = _resolve_local(part["$ref"], root)
        properties = part.get("properties") if isinstance(part, dict) else None
        total += len(properties) if isinstance(properties, dict) else 0
    return total


def _resolve_local(ref: str, root: Any) -> Any:
    """The target of a ``#/a/b`` pointer in ``root`` (None when it does not resolve)."""
    if not ref.startswith("#/"):
        return None
    node = root
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def _group_depth(pattern: str) -> int:
    deepest = depth = 0
    escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(0, depth - 1)
    return deepest


def nesting_depth(text: str) -> int:
    """How deeply ``[``/``{`` nest in JSON text (strings skipped), without parsing it."""
    deepest = depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def check_nesting(text: str, param: str, limits: SchemaLimits = DEFAULT_LIMITS) -> None:
    """Refuse JSON text nested deeper than ``limits.max_depth`` (before ``json.loads``).

    Raises:
        InvalidRequest: too deep.
    """
    if nesting_depth(text) > limits.max_depth:
        raise InvalidRequest(f"{param} nests JSON more than {limits.max_depth} deep", param=param)


def check_grammar_size(grammar: str, param: str, limits: SchemaLimits = DEFAULT_LIMITS) -> None:
    """Raises: InvalidRequest: the compiled grammar is larger than the limit."""
    if len(grammar) > limits.max_grammar_bytes:
        raise InvalidRequest(
            f"{param} compiles to a {len(grammar) // 1024} KiB grammar; at most "
            f"{limits.max_grammar_bytes // 1024} KiB is supported",
            param=param,
        )
