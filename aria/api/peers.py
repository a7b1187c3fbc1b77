"""Serving a chat request on a peer's model (issue 6's remote inference, API side).

Used only when the request names a model that is not installed here, the operator
allows sending prompts to peers (``consent.use_peers``, off by default), and a node
runs on this ARIA home. The node (``aria.p2p.remote``) picks the peer, streams the
peer's OpenAI chunks back over the control channel, and this module relays them to
the client unchanged, with ``x-aria-served-by: <peer id>``. Memory stays here: the
caller's memory is not consulted, ARIA's memory fields are removed from what is sent, and
``x-aria-memory`` says so. When no peer advertises
the model, the local path answers (its error says how to install it). A refusal or failure
before the first chunk is an OpenAI error response; one after it is an SSE error
event (the client already has tokens).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import Response

from aria.api.metrics import Metrics
from aria.api.schemas import ChatCompletionRequest
from aria.api.streaming import EventStream, error_event
from aria.errors import AriaError, PeerError, RoutingError
from aria.node import Node
from aria.p2p.control import NodeClient

__all__ = ["serve_on_peer"]


# ARIA's memory fields: never sent to a peer (the serving node refuses them anyway).
_PRIVATE_FIELDS = frozenset({"memory", "conversation_id"})


def _next(items: Iterator[Any]) -> Any:
    return next(items, None)


async def serve_on_peer(request: Request, body: ChatCompletionRequest) -> Response | None:
    """The peer's response, or None when this request is for the local path."""
    node: Node = request.app.state.node
    model = body.model
    if not model or model == "auto" or not node.settings.consent.use_peers:
        return None
    if node.store.is_installed(model):
        return None
    client = await anyio.to_thread.run_sync(NodeClient.connect, node.paths)
    if client is None:
        return None  # no node: the local path says the model is not installed
    payload = {k: v for k, v in (await request.json()).items() if k not in _PRIVATE_FIELDS}
    items = client.stream("infer", body=payload)
    try:
        first = await anyio.to_thread.run_sync(_next, items)  # AriaError → OpenAI error
    except PeerError as exc:
        if exc.code == RoutingError.code:
            return None  # no peer has it: the local path explains how to get the model
        raise
    if first is None:
        raise AriaError(f"the peer serving {model} closed the stream without an answer")
    peer = str(first["peer"])
    headers = {
        "x-aria-served-by": peer,
        "x-aria-route": f"model={model}; peer={peer}; reason=not installed locally",
        "x-aria-memory": "withheld (served by a peer)",
    }
    if not body.stream:
        return Response(first["data"], media_type="application/json", headers=headers)
    metrics: Metrics = request.app.state.metrics

    async def close() -> None:
        await anyio.to_thread.run_sync(items.close)  # type: ignore[attr-defined]

    return EventStream(_relay(first, items, metrics), headers=headers, on_close=close)


async def _relay(
    first: dict[str, Any], items: Iterator[Any], metrics: Metrics
) -> AsyncIterator[bytes]:
    yield _event(first["data"])
    try:
        while (item := await anyio.to_thread.run_sync(_next, items)) is not None:
            yield _event(item["data"])
    except AriaError as exc:
        yield error_event(exc, metrics)


def _event(data: str) -> bytes:
    return f"data: {data}\n\n".encode()
