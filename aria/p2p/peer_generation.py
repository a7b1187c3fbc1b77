"""A generation running on a peer, as this machine's API or CLI sees it.

A chain entry placed on a peer (:class:`aria.router.OnPeer`) is opened here: the node
running on this ARIA home streams the peer's answer over the control channel (op
``infer``), and :class:`PeerGeneration` turns the peer's OpenAI chunks back into the
events a local backend produces (text, tool-call fragments the peer's API already
parsed, a final summary with usage), so the API renders its response and the CLI prints
its answer exactly as for a local model.

What a peer sends is untrusted: each chunk must be one JSON object of the OpenAI
streaming shape, or ``[DONE]``; the first item names the peer, a base58 id; anything else
ends the generation with ``PeerError``. An error object the peer's API sent keeps its
class when it is about the request (``aria.p2p.inference.peer_failure``). At most
``MAX_RELAYS`` peer generations run at once per process, each within
``RELAY_DEADLINE_S`` from open to last chunk.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from aria.backends import DoneEvent, FinishReason, TokenEvent, ToolCallDelta
from aria.errors import AriaError, PeerError, RateLimited
from aria.p2p.control import NodeClient
from aria.p2p.inference import ErrorInfo, Failed, peer_failure

__all__ = ["MAX_RELAYS", "RELAY_DEADLINE_S", "PeerGeneration", "PeerRelays", "open_on_peer"]

MAX_RELAYS = 8
RELAY_DEADLINE_S = 900.0
_PEER_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]{16,128}")
_DONE = "[DONE]"

PeerEvent = TokenEvent | ToolCallDelta | DoneEvent


class PeerRelays:
    """How many peer generations run now in this process (one per node)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_RELAYS if limit is None else limit
        self.running = 0


@dataclass
class _Answer:
    """What the peer's chunks said so far."""

    pending: list[PeerEvent] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    done: bool = False

    def feed(self, peer: str, data: str) -> None:
        """Raises: PeerError: not one chunk of the OpenAI streaming shape; the request's
        own error (``peer_failure``) when the peer's API sent one."""
        if data == _DONE:
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise PeerError(f"peer {peer} sent a chunk that is not JSON") from None
        if not isinstance(chunk, dict):
            raise PeerError(f"peer {peer} sent a chunk that is not a JSON object")
        error = chunk.get("error")
        if error is not None:
            raise _error_event(peer, error)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = _count(usage.get("prompt_tokens"))
            self.completion_tokens = _count(usage.get("completion_tokens"))
        choices = chunk.get("choices")
        if not isinstance(choices, list) or len(choices) > 1:
            raise PeerError(f"peer {peer} sent a chunk without its choices")
        for choice in choices:
            self._choice(peer, choice)

    def _choice(self, peer: str, choice: Any) -> None:
        if not isinstance(choice, dict):
            raise PeerError(f"peer {peer} sent a malformed choice")
        reason = choice.get("finish_reason")
        if reason is not None:
            self.finish_reason = "length" if reason == "length" else "stop"
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            self.pending.append(TokenEvent(text))
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        for call in calls if isinstance(calls, list) else ():
            self.pending.append(_tool_call(peer, call))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _tool_call(peer: str, call: Any) -> ToolCallDelta:
    function = call.get("function") if isinstance(call, dict) else None
    index = call.get("index") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(index, int) or not 0 <= index < 128:
        raise PeerError(f"peer {peer} sent a malformed tool call")
    name, arguments, call_id = function.get("name"), function.get("arguments", ""), call.get("id")
    if not isinstance(arguments, str) or not all(
        v is None or isinstance(v, str) for v in (name, call_id)
    ):
        raise PeerError(f"peer {peer} sent a malformed tool call")
    return ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments)


def _error_event(peer: str, error: Any) -> AriaError:
    """The error a peer's API reported mid-stream (an OpenAI error object)."""
    try:
        info = ErrorInfo.model_validate({"status": 500, "type": "server_error", **error})
    except (TypeError, ValueError):
        return PeerError(f"peer {peer} failed mid-answer")
    message = info.message
    return peer_failure(peer, Failed(reason="failed", message=message, error=info))


class PeerGeneration:
    """The events of one generation on ``peer``, as a local backend's would be."""

    def __init__(
        self,
        peer: str,
        items: AsyncGenerator[Any, None],
        first: Any,
        relays: PeerRelays,
        deadline: float,
        on_failure: Callable[[str], None],
    ) -> None:
        self.peer = peer
        self._items = items
        self._relays = relays
        self._deadline = deadline
        self._on_failure = on_failure
        self._answer = _Answer()
        self._summary: DoneEvent | None = None
        self._closed = False
        self.finished = False
        self._item(first)

    def _item(self, item: Any) -> None:
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(data, str):
            raise PeerError(f"peer {self.peer} sent a malformed chunk")
        self._answer.feed(self.peer, data)

    async def next_event(self) -> PeerEvent:
        """The next text piece or tool-call fragment, or the final summary.

        Raises:
            PeerError: the peer or the node failed, broke the protocol or overran the
                deadline; the request's own error when the peer's API refused it.
        """
        answer = self._answer
        while not answer.pending and not answer.done:
            try:
                with anyio.fail_after(max(0.0, self._deadline - anyio.current_time())):
                    item = await anext(self._items, None)
                if item is None:
                    raise PeerError(f"peer {self.peer} ended its answer without finishing it")
                self._item(item)
            except TimeoutError:
                await self._fail()
                raise PeerError(
                    f"peer {self.peer} did not finish within {RELAY_DEADLINE_S:.0f} s"
                ) from None
            except AriaError as exc:
                if exc.falls_back:
                    self._on_failure(self.peer)
                await self._fail()
                raise
        if answer.pending:
            return answer.pending.pop(0)
        self.finished = True
        self._summary = DoneEvent(
            answer.finish_reason, answer.prompt_tokens, answer.completion_tokens
        )
        await self.aclose()
        return self._summary

    async def _fail(self) -> None:
        self.finished = True
        await self.aclose()

    async def cancel(self) -> DoneEvent | None:
        """Stop now (hanging up makes the peer stop generating); the usage so far."""
        if not self.finished:
            self.finished = True
            answer = self._answer
            self._summary = DoneEvent("cancelled", answer.prompt_tokens, answer.completion_tokens)
        await self.aclose()
        return self._summary

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._relays.running -= 1
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self._items.aclose()


async def open_on_peer(
    client: NodeClient,
    peer: str,
    body: dict[str, Any],
    relays: PeerRelays,
    on_failure: Callable[[str], None],
) -> PeerGeneration:
    """Start ``body`` on ``peer`` through the node; return once its first chunk arrived.

    Raises:
        RateLimited: ``MAX_RELAYS`` peer generations already run here.
        NodeNotRunning, ConsentRefused, PeerError: the node or the peer cannot serve it
            (availability: a chain moves on); the request's own error otherwise.
    """
    if relays.running >= relays.limit:
        raise RateLimited(f"{relays.limit} requests are already being relayed to peers")
    relays.running += 1
    deadline = anyio.current_time() + RELAY_DEADLINE_S
    items = client.astream("infer", peer_id=peer, body=body)
    try:
        with anyio.fail_after(RELAY_DEADLINE_S):
            first = await anext(items, None)
        if first is None:
            raise PeerError(f"peer {peer} closed the stream without an answer")
        named = first.get("peer") if isinstance(first, dict) else None
        if not isinstance(named, str) or not _PEER_ID.fullmatch(named) or named != peer:
            raise PeerError(f"peer {peer} sent a malformed first chunk")
        return PeerGeneration(peer, items, first, relays, deadline, on_failure)
    except BaseException as exc:
        if isinstance(exc, AriaError) and exc.falls_back:
            on_failure(peer)
        relays.running -= 1
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await items.aclose()
        if isinstance(exc, TimeoutError):
            raise PeerError(f"no answer from peer {peer} within {RELAY_DEADLINE_S:.0f} s") from None
        raise
