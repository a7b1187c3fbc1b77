"""The ARIA node: one trio task tree around a py-libp2p host.

``Node.run`` starts, inside one nursery: the host (TCP, Noise, yamux, optional
mDNS), the Kademlia DHT, NAT traversal (relay client/server, DCUtR, AutoNAT), the
handshake protocol, the control channel, and five loops — bootstrap, publish,
discovery/refresh, NAT, and the gatekeeper that closes connections which did not
complete the ARIA handshake in time — each bounded by timeouts. The host dials only
what the node's dial policy allows and caps connections per IP and subnet
(:mod:`aria.p2p.netpolicy`, :mod:`aria.p2p.gatekeeper`); the DHT talks only to
verified ARIA peers (:mod:`aria.p2p.transport.dht`). ``Node.stop`` (SIGTERM, ``aria
node stop``) publishes a withdrawn advert, then cancels the tree; leaving
``host.run`` closes every connection and stream. The peer-facing decisions live in
the pure modules (handshake, adverts, guard, peers); this module only wires them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from aria import __version__
from aria.config import AriaPaths, AriaSettings
from aria.p2p.addrs import is_circuit, is_dialable_ip
from aria.p2p.adverts import (
    Advert,
    build_advert,
    encode_advert,
    model_provider_key,
    rendezvous_provider_key,
    withdraw,
)
from aria.p2p.consent_live import consent_op
from aria.p2p.control import ControlServer, new_token
from aria.p2p.guard import PeerGuard
from aria.p2p.inference import INFERENCE_PROTOCOL
from aria.p2p.keys import NodeKey
from aria.p2p.local import LocalFacts, consent_summary, load_report, shareable_models
from aria.p2p.membership import Membership
from aria.p2p.peers import PeerBook
from aria.p2p.provenance import NodeProvenance
from aria.p2p.receipt_exchange import serve_receipts
from aria.p2p.receipts import RECEIPT_PROTOCOL
from aria.p2p.remote import infer_handler, serve_inference
from aria.p2p.reports import control_ops
from aria.p2p.services import NodeService, ServiceFactory
from aria.p2p.spec import ProtocolSpec
from aria.p2p.spotchecks import spotcheck_loop
from aria.p2p.transport.dht import AriaDht
from aria.p2p.transport.dialer import DIAL_TIMEOUT_S, dial_advert, dial_bootstrap
from aria.p2p.transport.host import HostNet, build_host, connection_kind, libp2p_id, ping_rtt_ms
from aria.p2p.transport.mdns import announce_on_lan, lan_peers
from aria.p2p.transport.nat import NatTraversal, RelayService
from aria.p2p.transport.sessions import Handshakes, watch_connections
from aria.p2p.tunnel import TUNNEL_PROTOCOL, Tunnels

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream
    from libp2p.peer.id import ID

__all__ = ["Node", "NodeOptions"]

log = logging.getLogger(__name__)

_MIN_REPUBLISH_S = 5.0


@dataclass(frozen=True)
class NodeOptions:
    """How ``aria node start`` was asked to run (flags over ``[p2p]`` settings)."""

    port: int = 8765
    listen_host: str = "0.0.0.0"
    bootstrap: tuple[str, ...] = ()
    relay: bool = False
    mdns: bool = True
    discovery_interval_s: float = 10.0
    nat_interval_s: float = 15.0
    lan: bool = True
    announce: tuple[str, ...] = ()
    max_connections: int = 64
    max_per_ip: int = 8
    max_per_subnet: int = 16
    max_unverified: int = 16


class Node:
    """One running ARIA node; build it, then ``await nursery.start(node.run)``."""

    def __init__(
        self,
        paths: AriaPaths,
        settings: AriaSettings,
        options: NodeOptions,
        key: NodeKey,
        spec: ProtocolSpec,
        local: LocalFacts,
        clock: Callable[[], float] = time.time,
        services: Sequence[ServiceFactory] = (),
    ) -> None:
        self.paths, self.settings, self.options = paths, settings, options
        self.key, self.spec, self.local, self.clock = key, spec, local, clock
        self.agent = f"aria/{__version__}"
        from aria.catalog import load_catalog, load_denylist

        self.catalog = load_catalog()
        self.denylist = load_denylist()
        self.book = PeerBook()
        self.guard = PeerGuard(spec.guard)
        # ledger, consent contract, peers' standing (aria.p2p.provenance)
        self.provenance = NodeProvenance(paths, settings, key)
        self.started_at = clock()
        self.advert: Advert | None = None
        self.active_jobs = 0  # remote jobs in flight (reported in the advert's load)
        self.tunnels = Tunnels(self)  # the RPC tunnel's both ends (aria.p2p.tunnel)
        self._seq = 0
        self._stopping = trio.Event()
        self._publish_soon = trio.Event()
        self._reaching: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._handshakes: Handshakes | None = None
        self.host: IHost | None = None
        self.dht: AriaDht | None = None
        self.nat: NatTraversal | None = None
        self.mdns_active = False
        self.members = Membership(self)  # who gets a connection (aria.p2p.membership)
        # Pillars running inside the node (the library: aria.library), see aria.p2p.services.
        self.services: list[NodeService] = [factory(self) for factory in services]

    # -- lifecycle ---------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        import multiaddr
        from libp2p.custom_types import TProtocol
        from libp2p.tools.anyio_service import background_trio_service

        options = self.options
        members = self.members
        net = HostNet(
            policy=lambda: members.policy,
            caps=members.gatekeeper.caps,
            max_connections=options.max_connections,
            reconnect=members.reconnect_candidates,
            lan=options.lan,
            announce=options.announce,
        )
        host = build_host(self.key, net)
        listen = multiaddr.Multiaddr(f"/ip4/{options.listen_host}/tcp/{options.port}")
        async with host.run(listen_addrs=[listen]):
            self.host = host
            members.listening(host)
            self.dht = AriaDht(host, self.spec, self.clock, members.wait_verified, members.vouched)
            self.nat = NatTraversal(host, RelayService() if self.options.relay else None)
            self._handshakes = Handshakes(
                host,
                self.key,
                self.spec,
                self.agent,
                self.local.summary,
                members.on_outcome,
                self.clock,
                contract=lambda: self.provenance.contract().sha256,
            )
            host.set_stream_handler(TProtocol(self.spec.handshake_id), self._accept_handshake)
            host.set_stream_handler(TProtocol(INFERENCE_PROTOCOL), partial(serve_inference, self))
            host.set_stream_handler(TProtocol(TUNNEL_PROTOCOL), self.tunnels.serve)
            host.set_stream_handler(TProtocol(RECEIPT_PROTOCOL), partial(serve_receipts, self))
            watch_connections(host, members.on_connected, members.on_disconnected)
            ops = {
                **control_ops(self),
                "infer": infer_handler(self),
                "tunnel": self.tunnels.open_op,
                "tunnel_close": self.tunnels.close_op,
                "set_consent": consent_op(self),
            }
            for service in self.services:
                for protocol, handler in service.stream_handlers().items():
                    host.set_stream_handler(TProtocol(protocol), handler)
                ops.update(service.control_ops())
            control = ControlServer(self.paths, self.key.peer_id, ops, new_token())
            lan = (
                announce_on_lan(host, self.spec.mdns_service)
                if options.mdns
                else contextlib.nullcontext(False)
            )
            with lan as self.mdns_active:
                async with background_trio_service(self.dht.kad), trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await nursery.start(self.nat.run)
                    for service in self.services:
                        await nursery.start(service.run)
                    await nursery.start(control.serve)
                    loops = [
                        self._bootstrap_loop,
                        self._publish_loop,
                        self._discovery_loop,
                        self._nat_loop,
                        members.gatekeeper_loop,
                    ]
                    if self.mdns_active:
                        loops.append(self._mdns_loop)
                    if self.provenance.ledger is not None:
                        loops.append(partial(spotcheck_loop, self))
                    for loop in loops:
                        self._spawn(loop)
                    nursery.start_soon(self.tunnels.run)
                    task_status.started()
                    await self._stopping.wait()
                    with trio.move_on_after(8) as scope:
                        scope.shield = True
                        await self._withdraw()
                    nursery.cancel_scope.cancel()

    async def _withdraw(self) -> None:
        """Replace our advert by a tombstone so peers drop us now, not at expiry."""
        if self.advert is None or self.dht is None:
            return
        tombstone = withdraw(self.advert, self.spec, now=self.clock(), seq=self._next_seq())
        try:
            await self.dht.publish_advert(encode_advert(tombstone, self.key, self.spec))
            log.info("published a withdrawn advert (seq %d)", tombstone.seq)
        except Exception as exc:
            log.warning("could not publish the withdrawn advert: %s", exc)

    def request_publish(self) -> None:
        """Publish our advert soon (coalesced with other triggers)."""
        self._publish_soon.set()

    def _next_seq(self) -> int:
        self._seq = max(self._seq + 1, int(self.clock() * 1000))
        return self._seq

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn`` in the node's nursery; a failure is logged, never fatal to the node."""
        if self._nursery is not None and not self._stopping.is_set():
            self._nursery.start_soon(self._survive, fn, *args)

    @staticmethod
    async def _survive(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Await ``fn(*args)``; log instead of raising if it fails."""
        try:
            await fn(*args)
        except Exception:  # peer input or a libp2p failure must not stop the node
            log.exception("background task %s failed", getattr(fn, "__name__", fn))

    async def _every(self, interval_s: float, step: Callable[[], Awaitable[Any]]) -> None:
        """Run ``step`` forever, ``interval_s`` apart, surviving its failures."""
        while True:
            await self._survive(step)
            await trio.sleep(interval_s)

    # -- connections and handshakes ------------------------------------------------

    def reputation(self, peer: str) -> float:
        """0..1: the lower of ``peer``'s spot-check record and its guard standing."""
        full = self.spec.guard.initial
        standing = max(0.0, min(1.0, self.guard.score(peer, self.clock()) / full)) if full else 1.0
        return self.provenance.reputation(peer, standing)

    def drop_peer(self, peer: str) -> None:
        """Disconnect ``peer`` (all its connections) in the background."""
        with contextlib.suppress(ValueError):
            self._spawn(self._disconnect, libp2p_id(peer))

    async def _accept_handshake(self, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        if self._handshakes is None or not self.guard.admit(peer, self.clock()):
            await stream.reset()
            return
        await self._handshakes.accept(stream)

    async def _disconnect(self, peer: ID) -> None:
        assert self.host is not None
        try:
            await self.host.disconnect(peer)
        except Exception as exc:
            log.debug("disconnect %s: %s", peer, exc)

    async def welcome(self, peer: str) -> None:
        """A newly verified peer: route through it, learn its advert, re-publish ours."""
        assert self.dht is not None
        await self.dht.add_peer(libp2p_id(peer))
        self._publish_soon.set()
        await self._refresh_peer(peer)

    # -- periodic work ---------------------------------------------------------------

    async def _bootstrap_loop(self) -> None:
        assert self.host is not None
        while True:
            await self._survive(dial_bootstrap, self.host, self.options.bootstrap)
            await trio.sleep(30 if self.host.get_connected_peers() else 5)

    async def _publish_loop(self) -> None:
        refresh = self.spec.adverts.refresh_s
        while True:
            with trio.move_on_after(60):
                await self._survive(self.publish)
            # Triggers (new peers, relay changes) coalesce: at most one publish per
            # _MIN_REPUBLISH_S, at least one per refresh interval.
            await trio.sleep(_MIN_REPUBLISH_S)
            with trio.move_on_after(max(0.0, refresh - _MIN_REPUBLISH_S)):
                await self._publish_soon.wait()
            self._publish_soon = trio.Event()

    async def publish(self) -> Advert:
        """Build, sign and store our advert; announce us and our models as providers."""
        assert self.host is not None and self.dht is not None and self.nat is not None
        models = await trio.to_thread.run_sync(
            shareable_models, self.paths, self.catalog, self.denylist
        )
        addrs = tuple(
            a
            for a in (str(x) for x in self.host.get_addrs())
            if is_dialable_ip(a) and not is_circuit(a)
        )
        advert = build_advert(
            self.key,
            self.spec,
            now=self.clock(),
            seq=self._next_seq(),
            addrs=addrs[:32],
            relayed_addrs=tuple(self.nat.reservations.values())[:32],
            relay=self.options.relay,
            hardware_summary=self.local.summary,
            profile=self.settings.node.profile,
            models=models,
            load=load_report(self.active_jobs),
            consent=consent_summary(self.provenance.contract().contract),
        )
        await self.dht.publish_advert(encode_advert(advert, self.key, self.spec))
        self.advert = advert
        keys = [rendezvous_provider_key(self.spec)] + [
            model_provider_key(m.id, self.spec) for m in models
        ]
        async with trio.open_nursery() as nursery:
            for key in keys:
                nursery.start_soon(self.dht.provide, key)
        log.info(
            "published advert seq %d (%d models, %d relayed addrs)",
            advert.seq,
            len(models),
            len(advert.relayed_addrs),
        )
        return advert

    async def _discovery_loop(self) -> None:
        await self._every(self.options.discovery_interval_s, self._discover_once)

    async def _discover_once(self) -> None:
        """Find ARIA nodes through the rendezvous key; refresh and ping the verified ones."""
        assert self.dht is not None and self.host is not None
        if not self.host.get_connected_peers():
            return
        with trio.move_on_after(60):
            found = await self.dht.find_providers(rendezvous_provider_key(self.spec), 50)
            for peer in found:
                if peer != self.key.peer_id and peer not in self._reaching:
                    self._spawn(self.reach, peer)
        now = self.clock()
        for record in self.book.verified():
            due = self.book.advert_due(
                record.peer_id,
                now,
                refresh_s=self.spec.adverts.refresh_s / 2,
                retry_s=self.options.discovery_interval_s,
            )
            self._spawn(self._refresh_peer if due else self._ping, record.peer_id)
        self.guard.prune(now)
        self.book.prune(now)

    async def reach(self, peer: str) -> None:
        """Connect to an ARIA node found in the DHT, directly or through its relay."""
        assert self.host is not None and self.dht is not None and self.nat is not None
        pid = libp2p_id(peer)
        if self.guard.is_banned(peer, self.clock()) or connection_kind(self.host, pid) != "none":
            return
        self._reaching.add(peer)
        try:
            advert = await self.dht.fetch_advert(peer)
            if advert is None:
                self.book.on_advert_missing(peer, self.clock())
                return
            self.book.on_advert(peer, advert, self.clock())
            if advert.withdrawn:
                return
            await dial_advert(self.host, self.nat, pid, advert)
        finally:
            self._reaching.discard(peer)

    async def _refresh_peer(self, peer: str) -> None:
        assert self.dht is not None
        advert = await self.dht.fetch_advert(peer)
        if advert is None:
            self.book.on_advert_missing(peer, self.clock())
        else:
            self.book.on_advert(peer, advert, self.clock())
        await self._ping(peer)

    async def _ping(self, peer: str) -> None:
        assert self.host is not None
        rtt = await ping_rtt_ms(self.host, libp2p_id(peer))
        if rtt is not None:
            self.book.on_rtt(peer, rtt)

    async def _nat_loop(self) -> None:
        await self._every(self.options.nat_interval_s, self._nat_once)

    async def _nat_once(self) -> None:
        """AutoNAT check; unless public, hold reservations on up to two relays."""
        assert self.host is not None and self.nat is not None and self._nursery is not None
        now = self.clock()
        direct = [
            libp2p_id(r.peer_id)
            for r in self.book.verified()
            if connection_kind(self.host, libp2p_id(r.peer_id)) == "direct"
        ]
        if direct:
            await self.nat.check_reachability(direct)
        for relay in list(self.nat.reservations):
            if connection_kind(self.host, libp2p_id(relay)) != "direct":
                self.nat.drop_reservation(relay)
                self._publish_soon.set()
        if self.options.relay or self.nat.reachability == "public":
            return
        for relay in self.book.relays(now):
            if relay in self.nat.reservations or len(self.nat.reservations) >= 2:
                continue
            if connection_kind(self.host, libp2p_id(relay)) == "direct":
                addr = await self.nat.reserve(libp2p_id(relay), self._nursery)
                if addr:
                    log.info("reserved a relay slot: %s", addr)
                    self._publish_soon.set()

    async def _mdns_loop(self) -> None:
        assert self.host is not None
        async for info in lan_peers():
            peer = str(info.peer_id)
            if peer != self.key.peer_id and not self.guard.is_banned(peer, self.clock()):
                with trio.move_on_after(DIAL_TIMEOUT_S):
                    try:
                        await self.host.connect(info)
                    except Exception as exc:
                        log.debug("mDNS peer %s unreachable: %s", peer, exc)
