"""The peer node: one trio task tree around a py-libp2p host (``aria node start``).

``PeerNode.run`` starts, inside one nursery: the host (TCP, Noise, yamux, optional
mDNS), the Kademlia DHT, NAT traversal (relay client/server, DCUtR, AutoNAT), the
handshake protocol, ARIA's stream protocols, the control channel, and the loops of
:mod:`aria.p2p.loops` plus the gatekeeper that closes connections which did not complete
the ARIA handshake in time. The host dials only what the node's dial policy allows and
caps connections per IP and subnet (:mod:`aria.p2p.netpolicy`, :mod:`aria.p2p.gatekeeper`);
the DHT talks only to verified ARIA peers (:mod:`aria.p2p.transport.dht`).
``PeerNode.stop`` (SIGTERM, ``aria node stop``) publishes a withdrawn advert, then
cancels the tree; leaving ``host.run`` closes every connection and stream.

This module only wires: the decisions live in the pure modules (handshake, adverts,
guard, peers, inference, consent), the protocol handlers see the node through its
narrow :class:`~aria.p2p.context.PeerContext`, and the RPC-worker starter is injected
(the peer layer never imports split inference).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from aria import __version__
from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths, AriaSettings
from aria.p2p.consent_live import consent_op
from aria.p2p.context import PeerContext, reset
from aria.p2p.control import ControlServer, new_token
from aria.p2p.inference import INFERENCE_PROTOCOL
from aria.p2p.keys import NodeKey
from aria.p2p.lending import Lending, StartWorker
from aria.p2p.local import LocalFacts
from aria.p2p.loops import Upkeep, survive
from aria.p2p.membership import Membership
from aria.p2p.netsize import estimate_network_size
from aria.p2p.options import NodeOptions
from aria.p2p.receipt_exchange import serve_receipts
from aria.p2p.receipts import RECEIPT_PROTOCOL
from aria.p2p.remote import infer_handler, serve_inference
from aria.p2p.reports import report_ops
from aria.p2p.services import NodeService, ServiceFactory
from aria.p2p.spec import ProtocolSpec
from aria.p2p.spotchecks import spotcheck_loop
from aria.p2p.transport.dht import AriaDht
from aria.p2p.transport.host import HostNet, build_host
from aria.p2p.transport.mdns import announce_on_lan
from aria.p2p.transport.nat import NatTraversal, RelayService
from aria.p2p.transport.sessions import Handshakes, watch_connections
from aria.p2p.tunnel import TUNNEL_PROTOCOL, Tunnels
from aria.p2p.views import NetworkStatus

if TYPE_CHECKING:
    from libp2p.abc import INetStream

__all__ = ["NodeOptions", "PeerNode"]

log = logging.getLogger(__name__)


class PeerNode:
    """One running peer node; build it, then ``await nursery.start(node.run)``."""

    def __init__(
        self,
        paths: AriaPaths,
        settings: AriaSettings,
        options: NodeOptions,
        key: NodeKey,
        spec: ProtocolSpec,
        local: LocalFacts,
        start_worker: StartWorker,
        clock: Callable[[], float] = time.time,
        services: Sequence[ServiceFactory] = (),
    ) -> None:
        self.options, self.local = options, local
        self.agent = f"aria/{__version__}"
        self.started_at = clock()
        self.ctx = PeerContext(
            paths=paths,
            settings=settings,
            spec=spec,
            key=key,
            catalog=load_catalog(),
            denylist=load_denylist(),
            clock=clock,
            spawn=self._spawn,
            start=self._start,
        )
        self.tunnels = Tunnels(self.ctx, Lending(self.ctx, start_worker))
        self.upkeep: Upkeep | None = None
        self.members = Membership(self.ctx, options, self._welcome)
        self.mdns_active = False
        self._stopping = trio.Event()
        self._nursery: trio.Nursery | None = None
        # Pillars running inside the node (the library: aria.library), see aria.p2p.services.
        self.services: list[NodeService] = [
            factory(self.ctx, lambda: self.upkeep.dht if self.upkeep else None)
            for factory in services
        ]

    @property
    def settings(self) -> AriaSettings:
        return self.ctx.settings

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        import multiaddr
        from libp2p.custom_types import TProtocol
        from libp2p.tools.anyio_service import background_trio_service

        ctx, options, members = self.ctx, self.options, self.members
        net = HostNet(
            policy=lambda: members.policy,
            caps=members.gatekeeper.caps,
            max_connections=options.max_connections,
            reconnect=members.reconnect_candidates,
            lan=options.lan,
            announce=options.announce,
        )
        host = build_host(ctx.key, net)
        listen = multiaddr.Multiaddr(f"/ip4/{options.listen_host}/tcp/{options.port}")
        async with host.run(listen_addrs=[listen]):
            dht = AriaDht(host, ctx.spec, ctx.clock, members.wait_verified, members.vouched)
            nat = NatTraversal(host, RelayService() if options.relay else None)
            upkeep = self.upkeep = Upkeep(ctx, options, self.local, host, dht, nat)
            ctx.attach(host, upkeep.reach)
            handshakes = Handshakes(
                host,
                ctx.key,
                ctx.spec,
                self.agent,
                self.local.summary,
                members.on_outcome,
                ctx.clock,
                contract=lambda: ctx.provenance.contract().sha256,
            )
            members.listening(host, handshakes)
            host.set_stream_handler(TProtocol(ctx.spec.handshake_id), self._accept_handshake)
            host.set_stream_handler(TProtocol(INFERENCE_PROTOCOL), partial(serve_inference, ctx))
            host.set_stream_handler(TProtocol(TUNNEL_PROTOCOL), self.tunnels.serve)
            host.set_stream_handler(TProtocol(RECEIPT_PROTOCOL), partial(serve_receipts, ctx))
            watch_connections(host, members.on_connected, members.on_disconnected)
            control = ControlServer(ctx.paths, ctx.key.peer_id, self._ops(dht), new_token())
            for service in self.services:
                for protocol, handler in service.stream_handlers().items():
                    host.set_stream_handler(TProtocol(protocol), handler)
            lan = (
                announce_on_lan(host, ctx.spec.mdns_service)
                if options.mdns
                else contextlib.nullcontext(False)
            )
            with lan as self.mdns_active:
                async with background_trio_service(dht.kad), trio.open_nursery() as nursery:
                    self._nursery = upkeep.nursery = nursery
                    await nursery.start(nat.run)
                    for service in self.services:
                        await nursery.start(service.run)
                    await nursery.start(control.serve)
                    loops = [*upkeep.loops(self.mdns_active), members.gatekeeper_loop]
                    if ctx.provenance.ledger is not None:
                        loops.append(partial(spotcheck_loop, ctx))
                    for loop in loops:
                        self._spawn(loop)
                    nursery.start_soon(self.tunnels.run)
                    task_status.started()
                    await self._stopping.wait()
                    with trio.move_on_after(8) as scope:
                        scope.shield = True
                        await upkeep.withdraw()
                    nursery.cancel_scope.cancel()

    def _ops(self, dht: AriaDht) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        """The control channel's operations (docs/protocol-spec.md)."""
        assert self.upkeep is not None
        upkeep = self.upkeep

        async def status(_: dict[str, Any]) -> dict[str, Any]:
            return self.status().model_dump(mode="json")

        ops: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            **report_ops(self.ctx, dht),
            "status": status,
            "infer": infer_handler(self.ctx),
            "tunnel": self.tunnels.open_op,
            "tunnel_close": self.tunnels.close_op,
            "set_consent": consent_op(
                self.ctx,
                self.tunnels.lending,
                self.services,
                upkeep.publish,
                upkeep.request_publish,
            ),
        }
        for service in self.services:
            ops.update(service.control_ops())
        return ops

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn`` in the node's nursery; a failure is logged, never fatal to the node."""
        if self._nursery is not None and not self._stopping.is_set():
            self._nursery.start_soon(survive, fn, *args)

    async def _start(self, fn: Callable[..., Awaitable[Any]]) -> Any:
        """``nursery.start(fn)``: run a task that reports a value once it is up."""
        if self._nursery is None:
            raise RuntimeError("the node is not running")
        return await self._nursery.start(fn)

    # -- connections ---------------------------------------------------------------------

    async def _accept_handshake(self, stream: INetStream) -> None:
        ctx = self.ctx
        peer = str(stream.muxed_conn.peer_id)
        handshakes = self.members.handshakes
        if handshakes is None or not ctx.guard.admit(peer, ctx.clock()):
            await reset(stream)
            return
        await handshakes.accept(stream)

    async def _welcome(self, peer: str) -> None:
        if self.upkeep is not None:
            await self.upkeep.welcome(peer)

    # -- reports -------------------------------------------------------------------------

    def status(self) -> NetworkStatus:
        """This node as ``aria network status`` shows it."""
        ctx, upkeep = self.ctx, self.upkeep
        assert upkeep is not None
        now = ctx.clock()
        table = [str(p) for p in upkeep.dht.routing_table_peers()]
        return NetworkStatus(
            peer_id=ctx.key.peer_id,
            protocol=ctx.spec.version,
            agent=self.agent,
            started_at=self.started_at,
            listen_addrs=[str(a) for a in ctx.host.get_addrs()],
            relayed_addrs=list(upkeep.nat.reservations.values()),
            reachability="public" if self.options.relay else upkeep.nat.reachability,
            relays_in_use=list(upkeep.nat.reservations),
            relay_service=self.options.relay,
            mdns=self.mdns_active,
            connected_peers=len(ctx.host.get_connected_peers()),
            aria_peers=len(ctx.book.verified()),
            dht_routing_table=len(table),
            dht_size_estimate=estimate_network_size(ctx.key.peer_id, table),
            banned_peers=[b.peer for b in ctx.guard.bans(now)],
            advert_seq=upkeep.advert.seq if upkeep.advert else None,
        )
