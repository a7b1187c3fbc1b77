"""Memory over the API: whose memory a request uses, whether it may, and what it did.

The caller is the API key of the request (its own store, ``key-<id>``) or, without a key,
the local user (the same memory as ``aria chat``). Memory is off over the API unless the
operator turned it on: ``memory.api`` for requests without a key, ``aria api key memory
NAME on`` per key. When on, chat requests use it unless they send ``"memory": false``;
``"memory": true`` where it is off is refused (403) rather than ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from aria.api.schemas import ChatCompletionRequest
from aria.apikeys import ApiKey, KeyStore
from aria.backends import GenerationJob
from aria.errors import AriaError, MemoryDisabled
from aria.memory import (
    LOCAL_USER,
    MemoryHub,
    MemoryService,
    TurnMemory,
    begin_turn,
    can_extract,
    end_turn,
    learn_from_answer,
    user_for_key,
)
from aria.node import Node
from aria.served import Served

log = logging.getLogger("aria.api")

__all__ = ["ChatMemory", "chat_memory", "memory_field", "memory_headers", "user_memory"]


def _key(request: Request) -> ApiKey | None:
    keys: KeyStore = request.app.state.keys
    known = getattr(request.state, "api_key_id", None)  # set by BearerAuth for a valid key
    if isinstance(known, str):
        return next((k for k in keys.all() if k.id == known), None)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return keys.find(token.strip())  # keys optional here: a valid one still names its owner


def _caller(request: Request) -> tuple[str, bool, str]:
    """(memory user, whether the operator allows memory for it, how to allow it)."""
    node: Node = request.app.state.node
    key = _key(request)
    if key is not None:
        how = f"the operator turns it on with `aria api key memory {key.name} on`"
        return user_for_key(key.id), key.memory, how
    how = "the operator turns it on with `aria memory api on` (or send an API key that has it)"
    return LOCAL_USER, node.settings.memory.api, how


def _refuse(request: Request, why: str) -> MemoryDisabled:
    node: Node = request.app.state.node
    if not node.settings.memory.enabled:
        return MemoryDisabled("memory is turned off on this node (memory.enabled = false)")
    return MemoryDisabled(f"memory is off for this caller: {why}")


async def user_memory(request: Request) -> MemoryService:
    """The caller's memory, for the ``/v1/memory`` endpoints.

    Raises:
        MemoryDisabled: memory is off for the node or for this caller.
    """
    node: Node = request.app.state.node
    user, allowed, how = _caller(request)
    if not (allowed and node.settings.memory.enabled):
        raise _refuse(request, how)
    hub: MemoryHub = request.app.state.memory
    return await hub.service(user)


@dataclass(frozen=True)
class ChatMemory:
    """The memory of one chat request: whose, and what it did before the answer."""

    service: MemoryService
    turn: TurnMemory

    async def answered(self, text: str) -> None:
        """Store the answer as the reply to the user's turn (episodic memory)."""
        await end_turn(self.service, self.turn, text, source="api")

    async def extract(self, node: Node, served: Served) -> None:
        """Let the model that answered find facts in the message, when it is capable and
        ran here (meant to run after the response is sent; failures are only logged)."""
        settings = node.settings.memory
        if not settings.extract or served.split is not None or served.served_by is not None:
            return
        if not can_extract(served.entry, settings.extract_min_params_b):
            return
        try:
            await learn_from_answer(node, self.service, self.turn, served.model_id)
        except AriaError as exc:
            log.warning("fact extraction with %s failed: %s", served.model_id, exc.message)


async def chat_memory(
    request: Request, body: ChatCompletionRequest, job: GenerationJob
) -> ChatMemory | None:
    """Prepare the memory of a chat request (None: it uses none).

    Raises:
        MemoryDisabled: the request asked for memory where it is off.
    """
    node: Node = request.app.state.node
    if body.memory is False or job.messages is None:
        return None
    user, allowed, how = _caller(request)
    allowed = allowed and node.settings.memory.enabled
    if not allowed:
        if body.memory:
            raise _refuse(request, how)
        return None
    hub: MemoryHub = request.app.state.memory
    service = await hub.service(user)
    conversation = body.conversation_id or _conversation_id(job.messages)
    turn = await begin_turn(
        service, job.messages, conversation, source="api", limit=node.settings.memory.recall
    )
    return None if turn is None else ChatMemory(service, turn)


def _conversation_id(messages: tuple[dict[str, Any], ...]) -> str:
    """Clients resend the whole conversation: its first user message names it."""
    first = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
    return "c-" + hashlib.sha256(first.encode("utf-8")).hexdigest()[:16]


def memory_headers(memory: ChatMemory | None) -> dict[str, str]:
    """``x-aria-memory`` (what was used or saved) and ``x-aria-reminders`` (JSON, ASCII)."""
    if memory is None:
        return {}
    headers = {"x-aria-memory": memory.turn.header()}
    if memory.turn.fired:
        fired = [
            {"id": r.id, "text": r.text, "when": r.describe(), "request": r.request}
            for r in memory.turn.fired
        ]
        headers["x-aria-reminders"] = json.dumps(fired, ensure_ascii=True)
    return headers


def memory_field(memory: ChatMemory) -> dict[str, Any]:
    """The ``aria`` field of a (non-streamed) chat response."""
    return {
        "memory": memory.turn.report(),
        "reminders": [r.to_dict() for r in memory.turn.fired],
    }
