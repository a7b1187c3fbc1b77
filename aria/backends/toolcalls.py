"""ARIA's tool-call text convention: how tools are shown to a model and parsed back (pure).

Models are asked to answer a tool call as (Hermes-style, which many open chat
models were trained on)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

The worker's grammar (``aria.backends.grammar``) forces exactly this shape when a call
is required, and allows either it or free text (which cannot start with ``<``) for
``tool_choice="auto"``. :class:`ToolCallParser` turns the streamed text back into
content deltas and complete tool calls, so the first characters decide the mode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "ContentDelta",
    "ParsedToolCall",
    "ToolCallParser",
    "prepare_messages",
    "tools_system_prompt",
]

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"


def tools_system_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """Instructions listing the functions and the call format."""
    listing = "\n".join(
        json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools
    )
    return (
        "You can call the following functions. Each is described by its name, purpose and "
        "the JSON Schema of its arguments:\n"
        f"{listing}\n"
        "To call a function, reply with only:\n"
        f'{CALL_OPEN}\n{{"name": <function name>, "arguments": <arguments object>}}\n{CALL_CLOSE}'
    )


def prepare_messages(
    messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]], template: str
) -> list[dict[str, Any]]:
    """Adapt OpenAI messages to what a chat template can render.

    Templates that do not know about tools see earlier tool calls inlined in the
    assistant's text, and (when tools are offered) the tool instructions in the
    system message. ``None`` content becomes ``""`` since templates concatenate strings.
    """
    knows_tools = "tool_calls" in template
    prepared: list[dict[str, Any]] = []
    for message in messages:
        item = {key: value for key, value in message.items() if value is not None}
        item["content"] = message.get("content") or ""
        calls = message.get("tool_calls") or []
        if calls and not knows_tools:
            inlined = "\n".join(_render_call(call) for call in calls)
            item["content"] = f"{item['content']}\n{inlined}".strip()
            item.pop("tool_calls", None)
        prepared.append(item)
    if tools and CALL_OPEN not in template:
        instructions = tools_system_prompt(tools)
        if prepared and prepared[0]["role"] == "system":
            prepared[0] = {**prepared[0], "content": f"{prepared[0]['content']}\n\n{instructions}"}
        else:
            prepared.insert(0, {"role": "system", "content": instructions})
    return prepared


def _render_call(call: dict[str, Any]) -> str:
    """One earlier call as the model wrote it; arguments that do not parse (or nest too
    deep for Python's parser) are shown as the string the client sent."""
    function = call.get("function", {})
    arguments = function.get("arguments", "{}")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        call_object = {"name": function.get("name", ""), "arguments": parsed}
        body = json.dumps(call_object, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        body = json.dumps(
            {"name": str(function.get("name", "")), "arguments": str(arguments)},
            ensure_ascii=False,
        )
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class ParsedToolCall:
    index: int
    name: str
    arguments: str  # a JSON object, as OpenAI sends it


ParserEvent = ContentDelta | ParsedToolCall


class ToolCallParser:
    """Incremental parser: feed generated text, get content deltas and finished calls.

    Until the output (leading whitespace aside) can no longer be the start of
    ``<tool_call>`` it is held back; then it is either plain content (streamed as
    is) or a sequence of calls (each emitted once its closing tag arrives).
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._mode: str = "undecided"
        self._calls = 0
        self._seen: set[tuple[str, str]] = set()
        # Small models often repeat the same call until max_tokens: the caller may stop.
        self.repeating = False

    def feed(self, text: str) -> list[ParserEvent]:
        if self._mode == "content":
            return [ContentDelta(text)] if text else []
        self._buffer += text
        if self._mode == "undecided":
            head = self._buffer.lstrip()
            if not head or (len(head) < len(CALL_OPEN) and CALL_OPEN.startswith(head)):
                return []
            if not head.startswith(CALL_OPEN):
                self._mode = "content"
                pending, self._buffer = self._buffer, ""
                return [ContentDelta(pending)]
            self._mode = "calls"
        return self._complete_calls()

    def finish(self) -> list[ParserEvent]:
        """End of generation: whatever is left (e.g. a call cut by max_tokens) is content."""
        rest, self._buffer = self._buffer, ""
        return [ContentDelta(rest)] if rest.strip() else []

    def _complete_calls(self) -> list[ParserEvent]:
        events: list[ParserEvent] = []
        while True:
            head = self._buffer.lstrip()
            if not head.startswith(CALL_OPEN) or CALL_CLOSE not in head:
                return events
            body, _, rest = head[len(CALL_OPEN) :].partition(CALL_CLOSE)
            self._buffer = rest
            if (event := self._parse_call(body)) is not None:
                events.append(event)

    def _parse_call(self, body: str) -> ParserEvent | None:
        """A call, content for an unparsable one, ``None`` for a repeat (dropped)."""
        try:
            call = json.loads(body)
            name = call["name"]
            arguments = call.get("arguments", {})
        except (ValueError, KeyError, TypeError):
            return ContentDelta(f"{CALL_OPEN}{body}{CALL_CLOSE}")
        if not isinstance(name, str) or not isinstance(arguments, dict):
            return ContentDelta(f"{CALL_OPEN}{body}{CALL_CLOSE}")
        key = (name, json.dumps(arguments, sort_keys=True))
        if key in self._seen:
            self.repeating = True
            return None
        self._seen.add(key)
        index = self._calls
        self._calls += 1
        return ParsedToolCall(index, name, json.dumps(arguments, ensure_ascii=False))
