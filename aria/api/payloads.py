"""OpenAI response bodies and stream chunks, built from generated text (pure).

:class:`ChatOutput` turns the model's text into chat deltas, parsing tool calls when
tools were offered; :class:`Chunks` renders SSE events. Content chunks are the hot
path of streaming, so they are formatted from a prebuilt template rather than a dict.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aria.backends import ContentDelta, DoneEvent, ParsedToolCall, ToolCallDelta, ToolCallParser

__all__ = ["DONE", "ChatOutput", "Chunks", "finish_reason", "sse", "usage"]

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying a JSON object."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def usage(done: DoneEvent | None) -> dict[str, Any]:
    """OpenAI's usage object; ``cached_tokens`` are prompt tokens the backend reused."""
    prompt = done.prompt_tokens if done else 0
    completion = done.completion_tokens if done else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": done.cached_tokens if done else 0},
    }


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def finish_reason(done: DoneEvent | None) -> str:
    """OpenAI's finish_reason for a generation (a cancelled one reports ``stop``)."""
    if done is None or done.finish_reason == "cancelled":
        return "stop"
    return done.finish_reason


@dataclass
class ChatOutput:
    """Accumulates one chat answer and yields its deltas as they become known."""

    tools: bool
    content: list[str] = field(default_factory=list)
    _calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._parser = ToolCallParser() if self.tools else None

    @property
    def repeating(self) -> bool:
        """The model is repeating a tool call it already made (stop generating)."""
        return self._parser is not None and self._parser.repeating

    def feed(self, text: str) -> list[dict[str, Any]]:
        if self._parser is None:
            self.content.append(text)
            return [{"content": text}]
        return self._deltas(self._parser.feed(text))

    def finish(self) -> list[dict[str, Any]]:
        return self._deltas(self._parser.finish()) if self._parser is not None else []

    def _deltas(self, events: list[ContentDelta | ParsedToolCall]) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        for event in events:
            if isinstance(event, ContentDelta):
                if event.text:
                    self.content.append(event.text)
                    deltas.append({"content": event.text})
                continue
            head = ToolCallDelta(event.index, f"call_{secrets.token_hex(12)}", event.name, "")
            deltas += self.call(head)
            if event.arguments:
                deltas += self.call(ToolCallDelta(event.index, None, None, event.arguments))
        return deltas

    def call(self, fragment: ToolCallDelta) -> list[dict[str, Any]]:
        """One fragment of a tool call, as the delta that streams it (and kept whole for
        the non-streamed message)."""
        function: dict[str, Any] = {"arguments": fragment.arguments}
        delta: dict[str, Any] = {"index": fragment.index}
        if fragment.id is not None or fragment.name is not None:
            call = {"id": fragment.id or f"call_{secrets.token_hex(12)}", "type": "function"}
            function = {"name": fragment.name or "", **function}
            delta.update(call)
            self._calls[fragment.index] = {**call, "function": dict(function)}
        elif fragment.index in self._calls:
            self._calls[fragment.index]["function"]["arguments"] += fragment.arguments
        delta["function"] = function
        return [{"tool_calls": [delta]}]

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [self._calls[index] for index in sorted(self._calls)]

    def finish_reason(self, done: DoneEvent | None) -> str:
        return "tool_calls" if self.tool_calls else finish_reason(done)

    def message(self) -> dict[str, Any]:
        text = "".join(self.content)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not self.tool_calls else None,
            "refusal": None,
        }
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class Chunks:
    """SSE chunks of one streamed response (chat or text completion)."""

    def __init__(self, kind: Literal["chat", "text"], model: str) -> None:
        self.kind = kind
        self.id = new_id("chatcmpl" if kind == "chat" else "cmpl")
        self.created = int(time.time())
        self.model = model
        self.object = "chat.completion.chunk" if kind == "chat" else "text_completion"
        head = json.dumps(
            {
                "id": self.id,
                "object": self.object,
                "created": self.created,
                "model": model,
                "system_fingerprint": None,
            },
            separators=(",", ":"),
        )[:-1]
        field_name = '"delta":{"content":' if kind == "chat" else '"text":'
        closing = "}" if kind == "chat" else ""
        self._prefix = f'data: {head},"choices":[{{"index":0,{field_name}'
        self._suffix = f'{closing},"logprobs":null,"finish_reason":null}}]}}\n\n'

    def content(self, text: str) -> bytes:
        """The hot path: one chunk carrying ``text``."""
        return (self._prefix + json.dumps(text) + self._suffix).encode()

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        if self.kind == "chat" and set(delta) == {"content"} and finish_reason is None:
            return self.content(delta["content"])
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish_reason}
        if self.kind == "chat":
            choice["delta"] = delta
        else:
            choice["text"] = delta.get("content", "")
        return sse({**self._base(), "choices": [choice]})

    def usage(self, done: DoneEvent | None) -> bytes:
        return sse({**self._base(), "choices": [], "usage": usage(done)})

    def response(
        self, body: dict[str, Any], done: DoneEvent | None, finish_reason: str
    ) -> dict[str, Any]:
        """A complete non-streamed response (``object`` without ``.chunk``)."""
        key = "message" if self.kind == "chat" else "text"
        choice = {"index": 0, key: body[key], "logprobs": None, "finish_reason": finish_reason}
        return {
            **self._base(),
            "object": "chat.completion" if self.kind == "chat" else "text_completion",
            "choices": [choice],
            "usage": usage(done),
        }
