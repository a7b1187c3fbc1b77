"""A running node's periodic work: bootstrap, publish, discovery, NAT and mDNS loops.

:class:`Upkeep` holds what the loops share — the host, the DHT, NAT traversal and the
node's narrow context — and how the node reaches a peer found in the DHT (directly or
through its relay), learns its advert and measures its round trip. Every loop survives
its own failures (a peer's bad input or a libp2p error is logged, never fatal) and is
bounded by timeouts; :class:`aria.p2p.node.PeerNode` starts them and cancels them on stop.

Publishing: the node's signed advert (its shareable models, hardware summary, consent,
load) is stored in the DHT, with provider records for the rendezvous key and every
model; triggers (a new peer, a relay change, a consent change) coalesce to at most one
publish per ``_MIN_REPUBLISH_S`` and at least one per refresh interval. On stop a
withdrawn advert (a tombstone) replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.addrs import is_circuit, is_dialable_ip
from aria.p2p.adverts import (
    Advert,
    build_advert,
    encode_advert,
    model_provider_key,
    rendezvous_provider_key,
    withdraw,
)
from aria.p2p.context import PeerContext
from aria.p2p.local import LocalFacts, consent_summary, load_report
from aria.p2p.options import NodeOptions
from aria.p2p.transport.dht import AriaDht
from aria.p2p.transport.dialer import DIAL_TIMEOUT_S, dial_advert, dial_bootstrap
from aria.p2p.transport.host import connection_kind, libp2p_id
from aria.p2p.transport.mdns import lan_peers
from aria.p2p.transport.nat import NatTraversal

if TYPE_CHECKING:
    from libp2p.abc import IHost

__all__ = ["Upkeep", "survive"]

log = logging.getLogger(__name__)

_MIN_REPUBLISH_S = 5.0


async def survive(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Await ``fn(*args)``; log instead of raising if it fails."""
    try:
        await fn(*args)
    except Exception:  # peer input or a libp2p failure must not stop the node
        log.exception("background task %s failed", getattr(fn, "__name__", fn))


class Upkeep:
    """The loops of one running node, and how it reaches, learns and publishes."""

    def __init__(
        self,
        ctx: PeerContext,
        options: NodeOptions,
        local: LocalFacts,
        host: IHost,
        dht: AriaDht,
        nat: NatTraversal,
    ) -> None:
        self.ctx, self.options, self.local = ctx, options, local
        self.host, self.dht, self.nat = host, dht, nat
        self.advert: Advert | None = None
        self._seq = 0
        self._publish_soon = trio.Event()
        self._reaching: set[str] = set()
        self.nursery: trio.Nursery | None = None  # the node's, once it runs (relay slots)

    def loops(self, mdns: bool) -> list[Callable[[], Awaitable[None]]]:
        loops: list[Callable[[], Awaitable[None]]] = [
            self._bootstrap_loop,
            self._publish_loop,
            self._discovery_loop,
            self._nat_loop,
        ]
        return [*loops, self._mdns_loop] if mdns else loops

    async def _every(self, interval_s: float, step: Callable[[], Awaitable[Any]]) -> None:
        """Run ``step`` forever, ``interval_s`` apart, surviving its failures."""
        while True:
            await survive(step)
            await trio.sleep(interval_s)

    # -- reaching peers ------------------------------------------------------------------

    async def reach(self, peer: str) -> None:
        """Connect to an ARIA node found in the DHT, directly or through its relay."""
        ctx = self.ctx
        pid = libp2p_id(peer)
        if ctx.guard.is_banned(peer, ctx.clock()) or connection_kind(self.host, pid) != "none":
            return
        self._reaching.add(peer)
        try:
            advert = await self.dht.fetch_advert(peer)
            if advert is None:
                ctx.book.on_advert_missing(peer, ctx.clock())
                return
            ctx.book.on_advert(peer, advert, ctx.clock())
            if advert.withdrawn:
                return
            await dial_advert(self.host, self.nat, pid, advert)
        finally:
            self._reaching.discard(peer)

    async def welcome(self, peer: str) -> None:
        """A newly verified peer: route through it, learn its advert, re-publish ours."""
        await self.dht.add_peer(libp2p_id(peer))
        self.request_publish()
        await self._refresh_peer(peer)

    async def _refresh_peer(self, peer: str) -> None:
        advert = await self.dht.fetch_advert(peer)
        if advert is None:
            self.ctx.book.on_advert_missing(peer, self.ctx.clock())
        else:
            self.ctx.book.on_advert(peer, advert, self.ctx.clock())
        await self.ctx.ping(peer)

    # -- publishing ----------------------------------------------------------------------

    def request_publish(self) -> None:
        """Publish our advert soon (coalesced with other triggers)."""
        self._publish_soon.set()

    def _next_seq(self) -> int:
        self._seq = max(self._seq + 1, int(self.ctx.clock() * 1000))
        return self._seq

    async def publish(self) -> Advert:
        """Build, sign and store our advert; announce us and our models as providers."""
        ctx = self.ctx
        models = await ctx.shareable()
        addrs = tuple(
            a
            for a in (str(x) for x in self.host.get_addrs())
            if is_dialable_ip(a) and not is_circuit(a)
        )
        advert = build_advert(
            ctx.key,
            ctx.spec,
            now=ctx.clock(),
            seq=self._next_seq(),
            addrs=addrs[:32],
            relayed_addrs=tuple(self.nat.reservations.values())[:32],
            relay=self.options.relay,
            hardware_summary=self.local.summary,
            profile=ctx.settings.node.profile,
            models=models,
            load=load_report(ctx.active_jobs),
            consent=consent_summary(ctx.provenance.contract().contract),
        )
        await self.dht.publish_advert(encode_advert(advert, ctx.key, ctx.spec))
        self.advert = advert
        keys = [rendezvous_provider_key(ctx.spec)] + [
            model_provider_key(m.id, ctx.spec) for m in models
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

    async def withdraw(self) -> None:
        """Replace our advert by a tombstone so peers drop us now, not at expiry."""
        if self.advert is None:
            return
        ctx = self.ctx
        tombstone = withdraw(self.advert, ctx.spec, now=ctx.clock(), seq=self._next_seq())
        try:
            await self.dht.publish_advert(encode_advert(tombstone, ctx.key, ctx.spec))
            log.info("published a withdrawn advert (seq %d)", tombstone.seq)
        except Exception as exc:
            log.warning("could not publish the withdrawn advert: %s", exc)

    async def _publish_loop(self) -> None:
        refresh = self.ctx.spec.adverts.refresh_s
        if self.options.bootstrap:
            # Published while the bootstrap peer is connected but not yet verified, the
            # advert stalls in the DHT's own lookup; the first verified peer triggers it.
            with trio.move_on_after(self.ctx.spec.handshake_timeout_s):
                await self._publish_soon.wait()
            self._publish_soon = trio.Event()
        while True:
            with trio.move_on_after(60):
                await survive(self.publish)
            # Triggers (new peers, relay changes) coalesce: at most one publish per
            # _MIN_REPUBLISH_S, at least one per refresh interval.
            await trio.sleep(_MIN_REPUBLISH_S)
            with trio.move_on_after(max(0.0, refresh - _MIN_REPUBLISH_S)):
                await self._publish_soon.wait()
            self._publish_soon = trio.Event()

    # -- the other loops -----------------------------------------------------------------

    async def _bootstrap_loop(self) -> None:
        while True:
            await survive(dial_bootstrap, self.host, self.options.bootstrap)
            await trio.sleep(30 if self.host.get_connected_peers() else 5)

    async def _discovery_loop(self) -> None:
        await self._every(self.options.discovery_interval_s, self._discover_once)

    async def _discover_once(self) -> None:
        """Find ARIA nodes through the rendezvous key; refresh and ping the verified ones."""
        ctx = self.ctx
        if not self.host.get_connected_peers():
            return
        with trio.move_on_after(60):
            found = await self.dht.find_providers(rendezvous_provider_key(ctx.spec), 50)
            for peer in found:
                if peer != ctx.key.peer_id and peer not in self._reaching:
                    ctx.spawn(self.reach, peer)
        now = ctx.clock()
        for record in ctx.book.verified():
            due = ctx.book.advert_due(
                record.peer_id,
                now,
                refresh_s=ctx.spec.adverts.refresh_s / 2,
                retry_s=self.options.discovery_interval_s,
            )
            ctx.spawn(self._refresh_peer if due else ctx.ping, record.peer_id)
        ctx.guard.prune(now)
        ctx.book.prune(now)

    async def _nat_loop(self) -> None:
        await self._every(self.options.nat_interval_s, self._nat_once)

    async def _nat_once(self) -> None:
        """AutoNAT check; unless public, hold reservations on up to two relays."""
        ctx, host, nat = self.ctx, self.host, self.nat
        now = ctx.clock()
        direct = [
            libp2p_id(r.peer_id)
            for r in ctx.book.verified()
            if connection_kind(host, libp2p_id(r.peer_id)) == "direct"
        ]
        if direct:
            await nat.check_reachability(direct)
        for relay in list(nat.reservations):
            if connection_kind(host, libp2p_id(relay)) != "direct":
                nat.drop_reservation(relay)
                self.request_publish()
        if self.options.relay or nat.reachability == "public":
            return
        for relay in ctx.book.relays(now):
            if relay in nat.reservations or len(nat.reservations) >= 2:
                continue
            if connection_kind(host, libp2p_id(relay)) == "direct":
                if self.nursery is None:
                    return
                addr = await nat.reserve(libp2p_id(relay), self.nursery)
                if addr:
                    log.info("reserved a relay slot: %s", addr)
                    self.request_publish()

    async def _mdns_loop(self) -> None:
        ctx = self.ctx
        async for info in lan_peers():
            peer = str(info.peer_id)
            if peer != ctx.key.peer_id and not ctx.guard.is_banned(peer, ctx.clock()):
                with trio.move_on_after(DIAL_TIMEOUT_S):
                    try:
                        await self.host.connect(info)
                    except Exception as exc:
                        log.debug("mDNS peer %s unreachable: %s", peer, exc)
