"""What the router reads from a request: its text, its shape and its size (pure).

``RouteRequest`` is built from an OpenAI-style body (``from_openai``), from chat messages
(``from_messages``) or from a bare query (``from_text``). It keeps only what routing needs:
the last user message's text (what the classifier reads), whether an image part, tools or
a JSON response format are present, and a token estimate of the whole prompt.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aria.errors import InvalidRequest

__all__ = ["RouteRequest", "estimate_tokens"]

_IMAGE_PARTS: Final = frozenset({"image_url", "input_image", "image"})
_TEXT_PARTS: Final = frozenset({"text", "input_text"})
_JSON_FORMATS: Final = frozenset({"json_object", "json_schema"})
# Chat templates wrap each message in a few special tokens.
_TOKENS_PER_MESSAGE: Final = 4


def estimate_tokens(text: str) -> int:
    """A deliberately generous token estimate, so a window is never judged too roomy.

    English BPE vocabularies average about four characters per token; other scripts
    (CJK, Cyrillic, Arabic...) cost about a token per character. The backend's tokenizer
    has the final word; this only steers the choice of model.
    """
    ascii_chars = sum(1 for ch in text if ch.isascii()) if not text.isascii() else len(text)
    return math.ceil(ascii_chars / 3.5 + (len(text) - ascii_chars))


@dataclass(frozen=True)
class RouteRequest:
    """The routing-relevant facts of one request."""

    text: str
    prompt_tokens: int
    max_tokens: int | None = None
    has_image: bool = False
    has_tools: bool = False
    json_mode: bool = False

    @property
    def needs_structured_output(self) -> bool:
        """Tools or a JSON response format: output a parser must accept."""
        return self.has_tools or self.json_mode

    @classmethod
    def from_text(cls, text: str, *, max_tokens: int | None = None) -> RouteRequest:
        """A bare query, as typed on the command line or sent to ``/v1/completions``."""
        return cls(text=text, prompt_tokens=estimate_tokens(text), max_tokens=max_tokens)

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Any] = (),
        json_mode: bool = False,
        max_tokens: int | None = None,
    ) -> RouteRequest:
        """Chat messages (OpenAI shape: ``content`` is a string or a list of parts).

        Raises:
            InvalidRequest: a message is not an object or its content has the wrong type.
        """
        texts: list[tuple[str, str]] = []
        has_image = False
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping):
                raise InvalidRequest(f"messages[{index}] must be an object", param="messages")
            text, image = _content(message.get("content"), index)
            has_image = has_image or image
            texts.append((str(message.get("role", "")), text))
        user = [text for role, text in texts if role == "user"]
        query = user[-1] if user else (texts[-1][1] if texts else "")
        tokens = sum(estimate_tokens(text) + _TOKENS_PER_MESSAGE for _, text in texts)
        if tools:
            tokens += estimate_tokens(json.dumps(list(tools), default=str))
        return cls(
            text=query,
            prompt_tokens=tokens,
            max_tokens=max_tokens,
            has_image=has_image,
            has_tools=bool(tools),
            json_mode=json_mode,
        )

    @classmethod
    def from_openai(cls, body: Mapping[str, Any]) -> RouteRequest:
        """A ``/v1/chat/completions`` or ``/v1/completions`` request body.

        Raises:
            InvalidRequest: neither ``messages`` (a list) nor ``prompt`` is usable.
        """
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InvalidRequest("max_tokens must be a positive integer", param="max_tokens")
        if "messages" in body:
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise InvalidRequest("messages must be a non-empty list", param="messages")
            tools = body.get("tools") or body.get("functions") or []
            if not isinstance(tools, list):
                raise InvalidRequest("tools must be a list", param="tools")
            if body.get("tool_choice") == "none":
                tools = []
            return cls.from_messages(
                messages, tools=tools, json_mode=_json_mode(body), max_tokens=max_tokens
            )
        prompt = body.get("prompt")
        if isinstance(prompt, list) and all(isinstance(part, str) for part in prompt):
            prompt = "\n".join(prompt)
        if not isinstance(prompt, str):
            raise InvalidRequest("the request needs messages or a text prompt", param="messages")
        return cls.from_text(prompt, max_tokens=max_tokens)


def _content(content: object, index: int) -> tuple[str, bool]:
    """The text of one message's content, and whether it holds an image part."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        raise InvalidRequest(
            f"messages[{index}].content must be a string or a list of parts", param="messages"
        )
    texts: list[str] = []
    has_image = False
    for part in content:
        if not isinstance(part, Mapping):
            raise InvalidRequest(
                f"messages[{index}].content parts must be objects", param="messages"
            )
        kind = part.get("type")
        if kind in _IMAGE_PARTS:
            has_image = True
        elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts), has_image


def _json_mode(body: Mapping[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, Mapping) and response_format.get("type") in _JSON_FORMATS
