"""Pillars that run inside the node process without the node knowing them (the library).

A service brings its own stream protocols and control ops and lives as long as the node;
it is told when the operator's consent changed. The node process's composition root
(``aria node start``) passes the factories in, so ``aria.p2p`` never imports the pillars
built on it (:mod:`aria.library` sees the node's :class:`aria.p2p.context.PeerContext` and DHT
through its own narrower view).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aria.p2p.context import PeerContext
    from aria.p2p.transport.dht import AriaDht

__all__ = ["NodeService", "ServiceFactory"]

StreamHandler = Callable[[Any], Awaitable[None]]
ControlHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class NodeService(Protocol):
    def stream_handlers(self) -> Mapping[str, StreamHandler]:
        """Protocol id -> handler of one inbound stream."""
        ...

    def control_ops(self) -> Mapping[str, ControlHandler]:
        """Control-channel op name -> handler (JSON in, JSON or an async iterator out)."""
        ...

    async def run(self, *, task_status: Any = ...) -> None:
        """Its background work; ``task_status.started()`` once it serves."""
        ...

    async def consent_changed(self) -> None:
        """The operator's consent changed (the context's settings and contract hold the new one)."""
        ...


ServiceFactory = Callable[["PeerContext", Callable[[], "AriaDht | None"]], NodeService]
"""``(context, dht) -> service``: the node's narrow context and its DHT (None until the
node listens)."""
