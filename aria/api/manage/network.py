"""``/api/network``: the peer-to-peer node as the dashboard shows it.

The libp2p node is its own process (``aria node start``); the API asks it through the
local control channel (:class:`aria.p2p.control.NodeClient`), as ``aria network`` does.
The node pushes nothing, so ``/api/network/events`` asks it every ``REFRESH_S`` seconds
*while a page watches the network view* and sends an event only when something
changed; with no such page open, nothing polls. The counters of requests used and
served over the network come from this API's metrics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from aria.api.manage.context import hub_of, metrics_of, node_of
from aria.api.manage.events import KEEPALIVE_S, sse, sse_response
from aria.api.metrics import Metrics
from aria.errors import NodeNotRunning, PeerError
from aria.node import Node
from aria.p2p.control import NodeClient

__all__ = ["CONTROL_TIMEOUT_S", "REFRESH_S", "network_snapshot", "router"]

REFRESH_S: Final = 2.0
CONTROL_TIMEOUT_S: Final = 3.0

router = APIRouter(tags=["network"])


def _query(client: NodeClient) -> dict[str, Any]:
    status = client.status()
    peers = client.peers()
    return {
        "status": status.model_dump(mode="json"),
        "peers": [peer.model_dump(mode="json") for peer in peers],
    }


async def network_snapshot(node: Node, metrics: Metrics) -> dict[str, Any]:
    """``{"running", "status", "peers", "traffic", "error"}`` (status and peers only
    when a node answers on this ARIA home)."""
    snapshot: dict[str, Any] = {
        "running": False,
        "status": None,
        "peers": [],
        "traffic": metrics.peer_traffic(),
        "error": None,
    }
    client = NodeClient.located(node.paths, timeout_s=CONTROL_TIMEOUT_S)
    if client is None:
        return snapshot
    try:
        snapshot.update(await anyio.to_thread.run_sync(_query, client), running=True)
    except NodeNotRunning:
        pass  # a control file left by a node that stopped
    except PeerError as exc:
        snapshot.update(running=True, error=exc.message)
    return snapshot


@router.get("/network")
async def network(request: Request) -> JSONResponse:
    """The node's peer id, reachability (public / behind NAT / relayed), peers with RTT,
    what they share, and the requests used and served over the network."""
    return JSONResponse(await network_snapshot(node_of(request), metrics_of(request)))


@router.get("/network/events", response_class=StreamingResponse)
async def network_events(request: Request) -> StreamingResponse:
    """``network`` events (the same object as ``GET /api/network``) when it changes."""
    node, metrics, hub = node_of(request), metrics_of(request), hub_of(request)

    async def body() -> AsyncIterator[bytes]:
        last: dict[str, Any] | None = None
        quiet_since = anyio.current_time()
        while not hub.closed:  # closed: the server is stopping
            snapshot = await network_snapshot(node, metrics)
            now = anyio.current_time()
            if snapshot != last:
                last, quiet_since = snapshot, now
                yield sse("network", snapshot)
            elif now - quiet_since >= KEEPALIVE_S:
                quiet_since = now
                yield b": keepalive\n\n"
            await anyio.sleep(REFRESH_S)

    return sse_response(body())
