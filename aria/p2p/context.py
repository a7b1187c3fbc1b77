"""What ARIA's stream protocols and control ops may use of a running node, and nothing more.

The protocol handlers (:mod:`~aria.p2p.remote`, :mod:`~aria.p2p.tunnel`,
:mod:`~aria.p2p.lending`, :mod:`~aria.p2p.reports`, :mod:`~aria.p2p.membership`) depend
on this one narrow context instead of the node that wires them
(:class:`aria.p2p.node.PeerNode`): the peer book, the guard, the clock, the operator's
settings, the store of shareable models, the node's provenance (ledger, consent
contract in force, peers' standing), a way to run background work (``spawn``,
``start``), and the two sequences every protocol repeats — reach a peer and open a
stream to it (:meth:`PeerContext.open_stream`), and admit an inbound stream
(:meth:`PeerContext.admit_stream`). The node fills in the host and how it reaches a peer
once they exist (:meth:`PeerContext.attach`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from aria.catalog import Catalog, Denylist
from aria.config import AriaPaths, AriaSettings
from aria.errors import PeerError
from aria.p2p.adverts import ModelOffer
from aria.p2p.guard import PeerGuard
from aria.p2p.keys import NodeKey
from aria.p2p.local import shareable_models
from aria.p2p.peers import PeerBook
from aria.p2p.provenance import NodeProvenance
from aria.p2p.spec import ProtocolSpec
from aria.p2p.transport.host import connection_addrs, connection_kind, libp2p_id, ping_rtt_ms
from aria.p2p.views import ConnectionKind
from aria.store import ModelStore

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream

__all__ = ["PeerContext", "Spawn", "Start", "reset"]

log = logging.getLogger(__name__)

Spawn = Callable[..., None]
Start = Callable[[Callable[..., Awaitable[Any]]], Awaitable[Any]]


@dataclass
class PeerContext:
    """One running node as its protocols see it (``settings`` changes live)."""

    paths: AriaPaths
    settings: AriaSettings
    spec: ProtocolSpec
    key: NodeKey
    catalog: Catalog
    denylist: Denylist
    clock: Callable[[], float]
    spawn: Spawn  # run fn(*args) in the background; a failure is logged, never fatal
    start: Start  # run a task that reports a value once started (``nursery.start``)
    book: PeerBook = field(default_factory=PeerBook)
    guard: PeerGuard = field(init=False)
    store: ModelStore = field(init=False)  # the node's one store value (shareable models)
    provenance: NodeProvenance = field(init=False)  # ledger, contract in force, standing
    active_jobs: int = 0  # peers' inference jobs in flight (reported in the advert's load)
    _host: IHost | None = None
    _reach: Callable[[str], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self.guard = PeerGuard(self.spec.guard)
        self.store = ModelStore(self.paths, self.catalog, self.denylist)
        self.provenance = NodeProvenance(self.paths, self.settings, self.key)

    def attach(self, host: IHost, reach: Callable[[str], Awaitable[None]]) -> None:
        """The node's host listens; ``reach(peer)`` connects to a peer found in the DHT."""
        self._host, self._reach = host, reach

    @property
    def host(self) -> IHost:
        if self._host is None:
            raise PeerError("the node is not running")
        return self._host

    # -- streams -----------------------------------------------------------------------

    async def open_stream(self, peer: str, protocol: str, timeout_s: float) -> INetStream:
        """A new ``protocol`` stream to ``peer``, reaching it first if not connected.

        Raises:
            PeerError: not a peer id, unreachable, or the stream did not open in time.
        """
        from libp2p.custom_types import TProtocol

        try:
            pid = libp2p_id(peer)
        except ValueError:
            raise PeerError(f"{peer!r} is not a peer id") from None
        try:
            with trio.fail_after(timeout_s):
                if connection_kind(self.host, pid) == "none" and self._reach is not None:
                    await self._reach(peer)
                return await self.host.new_stream(pid, [TProtocol(protocol)])
        except Exception as exc:  # py-libp2p raises many types for an unreachable peer
            raise PeerError(f"cannot open {protocol} to peer {peer}: {exc}") from None

    async def admit_stream(self, stream: INetStream) -> str | None:
        """The peer of an inbound stream when it is a verified ARIA node within its rate
        limit; otherwise the stream is reset and None returned."""
        peer = str(stream.muxed_conn.peer_id)
        record = self.book.get(peer)
        if record is None or record.verified_at is None or not self.guard.admit(peer, self.clock()):
            await reset(stream)
            return None
        return peer

    # -- peers -------------------------------------------------------------------------

    def reputation(self, peer: str) -> float:
        """0..1: the lower of ``peer``'s spot-check record and its guard standing."""
        full = self.spec.guard.initial
        standing = max(0.0, min(1.0, self.guard.score(peer, self.clock()) / full)) if full else 1.0
        return self.provenance.reputation(peer, standing)

    def penalize(self, peer: str, kind: str) -> None:
        """Score ``kind`` against ``peer``; a peer that falls below the line is dropped."""
        if self.guard.penalize(peer, kind, self.clock()) is not None:
            log.warning("banning %s for %.0f s", peer, self.spec.guard.ban_s)
            self.drop_peer(peer)

    def drop_peer(self, peer: str) -> None:
        """Disconnect ``peer`` (all its connections) in the background."""
        with contextlib.suppress(ValueError):
            self.spawn(self._disconnect, libp2p_id(peer))

    async def _disconnect(self, peer: Any) -> None:
        try:
            await self.host.disconnect(peer)
        except Exception as exc:
            log.debug("disconnect %s: %s", peer, exc)

    def connection(self, peer: str) -> ConnectionKind:
        return connection_kind(self.host, libp2p_id(peer))

    def addrs(self, peer: str) -> list[str]:
        return connection_addrs(self.host, libp2p_id(peer))

    def connected(self) -> set[str]:
        return {str(p) for p in self.host.get_connected_peers()}

    async def ping(self, peer: str) -> float | None:
        """One libp2p ping's round trip in ms (None: no answer); recorded in the book."""
        rtt = await ping_rtt_ms(self.host, libp2p_id(peer))
        if rtt is not None:
            self.book.on_rtt(peer, rtt)
        return rtt

    async def reach(self, peer: str) -> None:
        if self._reach is not None:
            await self._reach(peer)

    # -- this machine ------------------------------------------------------------------

    async def shareable(self) -> tuple[ModelOffer, ...]:
        """The models this node offers peers now (read from the store off the loop)."""
        return await trio.to_thread.run_sync(shareable_models, self.store)


async def reset(stream: INetStream) -> None:
    """Reset ``stream``, whatever state it is in (shielded, never raises)."""
    with trio.CancelScope(shield=True), contextlib.suppress(Exception):
        await stream.reset()
