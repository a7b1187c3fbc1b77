"""Serving a chat request on a peer's model (issue 6's remote inference, API side).

Used only when the request names a model that is not installed here, the operator
allows sending prompts to peers (``use.prompts_may_leave`` in the consent contract,
off by default), and a node
runs on this ARIA home. The node (``aria.p2p.remote``) picks the peer, streams the
peer's OpenAI chunks back over the control channel, and this module relays them to
the client with ``x-aria-served-by: <peer id>``. Memory stays here: the caller's memory is
not consulted, ARIA's memory fields are not sent, and ``x-aria-memory`` says so (the serving
node runs every peer request without memory anyway). When no peer advertises the model,
the local path answers (its error says how to install it). A refusal or failure
before the first chunk is an OpenAI error response; one after it is an SSE error
event (the client already has tokens).

What a peer sends is untrusted: each chunk must be one JSON object (re-encoded here,
so it cannot smuggle SSE lines), the peer id a base58 id. What goes to the peer is the
validated request (fields ARIA reads, without ``user``), not the client's raw body.
Relays run on the API's event loop (no thread per chunk), at most ``MAX_RELAYS`` at
once, each within ``RELAY_DEADLINE_S`` from start to last chunk.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import Response

from aria.api.metrics import Metrics
from aria.api.schemas import ChatCompletionRequest
from aria.api.streaming import EventStream, error_event
from aria.errors import AriaError, NodeNotRunning, PeerError, RateLimited, RoutingError
from aria.node import Node
from aria.p2p.control import NodeClient

__all__ = ["MAX_RELAYS", "RELAY_DEADLINE_S", "Relays", "serve_on_peer"]

MAX_RELAYS = 8
RELAY_DEADLINE_S = 900.0
_PEER_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]{16,128}")


class Relays:
    """How many peer relays run now (one per API app)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_RELAYS if limit is None else limit
        self.running = 0


@dataclass(frozen=True)
class _Chunk:
    peer: str | None  # on the first chunk only
    data: str  # one compact JSON object, or [DONE]: no newline can be in it


_DONE = "[DONE]"


def _chunk(item: Any, *, first: bool) -> _Chunk:
    """Raises: PeerError: not a ``{"data"}`` item (``{"peer", "data"}`` first) carrying
    one JSON object or ``[DONE]``."""
    peer = item.get("peer") if isinstance(item, dict) else None
    data = item.get("data") if isinstance(item, dict) else None
    if first and (not isinstance(peer, str) or not _PEER_ID.fullmatch(peer)):
        raise PeerError("the serving peer sent a malformed first chunk")
    if not isinstance(data, str):
        raise PeerError("the serving peer sent a malformed chunk")
    if data == _DONE:
        return _Chunk(peer, data)
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        raise PeerError("the serving peer sent a chunk that is not JSON") from None
    if not isinstance(parsed, dict):
        raise PeerError("the serving peer sent a chunk that is not a JSON object")
    return _Chunk(peer, json.dumps(parsed, separators=(",", ":"), ensure_ascii=False))


def _forwarded(body: ChatCompletionRequest) -> dict[str, Any]:
    """The request as ARIA validated it, minus what identifies the client (``user``) and
    ARIA's memory fields (memories never leave the machine)."""
    private = {"user", "memory", "conversation_id"}
    return body.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=private)


async def serve_on_peer(request: Request, body: ChatCompletionRequest) -> Response | None:
    """The peer's response, or None when this request is for the local path.

    Raises:
        RateLimited: ``MAX_RELAYS`` relays already run; PeerError and its subclasses:
            the peer or the node refused or failed before the first chunk.
    """
    node: Node = request.app.state.node
    model = body.model
    if not model or model == "auto" or not node.prompts_may_leave():
        return None
    if node.store.is_installed(model):
        return None
    client = NodeClient.located(node.paths)
    if client is None:
        return None  # no node: the local path says the model is not installed
    relays: Relays = request.app.state.relays
    if relays.running >= relays.limit:
        raise RateLimited(f"{relays.limit} requests are already being relayed to peers")
    relays.running += 1
    items = client.astream("infer", body=_forwarded(body))
    relaying = False
    try:
        relaying, response = await _respond(request, body, items)
        return response
    finally:
        if not relaying:
            await _close(items, relays)


async def _respond(
    request: Request, body: ChatCompletionRequest, items: AsyncGenerator[Any, None]
) -> tuple[bool, Response | None]:
    """(whether a stream now owns ``items``, the response or None for the local path)."""
    deadline = anyio.current_time() + RELAY_DEADLINE_S
    try:
        with anyio.fail_after(RELAY_DEADLINE_S):
            item = await anext(items, None)
    except NodeNotRunning:
        return False, None  # a stale control file: the local path answers
    except PeerError as exc:
        if exc.code == RoutingError.code:
            return False, None  # no peer has it: the local path explains how to get the model
        raise
    except TimeoutError:
        raise PeerError(f"no peer answered within {RELAY_DEADLINE_S:.0f} s") from None
    if item is None:
        raise PeerError(f"the peer serving {body.model} closed the stream without an answer")
    first = _chunk(item, first=True)
    assert first.peer is not None
    metrics: Metrics = request.app.state.metrics
    metrics.peer_requests.labels("used", "remote").inc()
    headers = {
        "x-aria-served-by": first.peer,
        "x-aria-route": f"model={body.model}; peer={first.peer}; reason=not installed locally",
        "x-aria-memory": "withheld (served by a peer)",
    }
    if not body.stream:
        return False, Response(first.data, media_type="application/json", headers=headers)
    relays: Relays = request.app.state.relays
    stream = _relay(first, items, metrics, deadline)
    return True, EventStream(stream, headers=headers, on_close=lambda: _close(items, relays))


async def _close(items: AsyncGenerator[Any, None], relays: Relays) -> None:
    relays.running -= 1
    with anyio.CancelScope(shield=True):
        await items.aclose()


async def _relay(
    first: _Chunk, items: AsyncGenerator[Any, None], metrics: Metrics, deadline: float
) -> AsyncIterator[bytes]:
    yield _event(first.data)
    try:
        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
            async for item in items:
                yield _event(_chunk(item, first=False).data)
    except AriaError as exc:
        yield error_event(exc, metrics)
    except TimeoutError:
        error = PeerError(f"the peer did not finish within {RELAY_DEADLINE_S:.0f} s")
        yield error_event(error, metrics)


def _event(data: str) -> bytes:
    return f"data: {data}\n\n".encode()
