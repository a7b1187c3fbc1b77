"""Who gets a connection to a node, and when a peer counts as an ARIA node.

Wires the pure pieces to one running node (through its :class:`~aria.p2p.context.PeerContext`):
the dial policy
(:mod:`aria.p2p.netpolicy`), the gatekeeper that caps and times out unverified
connections (:mod:`aria.p2p.gatekeeper`), handshake outcomes (the peer book, the guard's
penalties, disconnecting peers that are not ARIA nodes), and the questions the DHT and
the re-dialler ask: is this peer verified (waiting for a handshake in progress), is it
vouched for, which known ARIA nodes are worth re-dialling.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.context import PeerContext
from aria.p2p.gatekeeper import Drop, Gatekeeper
from aria.p2p.guard import handshake_penalty
from aria.p2p.handshake import HandshakeComplete, HandshakeFailed
from aria.p2p.netpolicy import ConnectionCaps, DialPolicy, ip_port
from aria.p2p.options import NodeOptions
from aria.p2p.transport.host import connection_kind, interfaces, libp2p_id
from aria.p2p.transport.sessions import Handshakes

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID

__all__ = ["Membership"]

log = logging.getLogger(__name__)


class Membership:
    """The node's connection admission and its view of verified peers."""

    def __init__(
        self,
        ctx: PeerContext,
        options: NodeOptions,
        welcome: Callable[[str], Awaitable[None]],
    ) -> None:
        self.ctx = ctx
        self.options = options
        self._welcome = welcome
        self.gatekeeper = Gatekeeper(
            ConnectionCaps(options.max_per_ip, options.max_per_subnet),
            options.max_unverified,
            ctx.spec.handshake_timeout_s,
        )
        self.policy = self.dial_policy()
        self.handshakes: Handshakes | None = None
        self._host: IHost | None = None
        self._verified_events: dict[str, trio.Event] = {}

    def listening(self, host: IHost, handshakes: Handshakes) -> None:
        """The host listens: its own address joins the dial policy (never dial yourself),
        and new connections get handshakes."""
        self._host, self.handshakes = host, handshakes
        bound = [t for t in (ip_port(a) for a in host.get_addrs()) if t is not None]
        self.policy = self.dial_policy(bound[0][1] if bound else None)

    def dial_policy(self, port: int | None = None) -> DialPolicy:
        """The dial policy for this node (``port``: where it listens, once known)."""
        operator = [t for t in (ip_port(a) for a in self.options.bootstrap) if t is not None]
        return DialPolicy.for_node(
            lan=self.options.lan,
            listen_ips=[self.options.listen_host],
            interfaces=interfaces(),
            operator=operator,
            own_port=port,
        )

    def on_connected(self, peer: ID, outbound: bool, connection: int, ip: str | None) -> None:
        ctx = self.ctx
        name = str(peer)
        record = ctx.book.get(name)
        verdict = self.gatekeeper.on_connected(
            name,
            connection,
            ip,
            verified=record is not None and record.verified_at is not None,
            now=ctx.clock(),
        )
        if isinstance(verdict, Drop):
            log.info("dropped a connection from %s (%s): %s", name, ip, verdict.reason)
            ctx.drop_peer(name)
        elif ctx.guard.is_banned(name, ctx.clock()):
            ctx.drop_peer(name)
        elif outbound and self.handshakes is not None:
            ctx.spawn(self.handshakes.initiate, peer)

    def on_disconnected(self, peer: ID, connection: int, last: bool) -> None:
        self.gatekeeper.on_disconnected(str(peer), connection, last=last)
        if last:
            self.ctx.book.on_disconnected(str(peer))

    async def gatekeeper_loop(self) -> None:
        """Close connections whose peer did not complete the handshake in time."""
        while True:
            await trio.sleep(1.0)
            for peer in self.gatekeeper.overdue(self.ctx.clock()):
                record = self.ctx.book.get(peer)
                if record is None or record.verified_at is None:
                    log.info("closing %s: no ARIA handshake in time", peer)
                    self.ctx.drop_peer(peer)

    async def wait_verified(self, peer: ID, wait_s: float, dial: bool) -> bool:
        """Whether ``peer`` is a verified ARIA node, waiting up to ``wait_s`` for a handshake
        in progress (with ``dial``, connecting first so that one starts)."""
        ctx, host = self.ctx, self._host
        name = str(peer)
        record = ctx.book.get(name)
        if record is not None and record.verified_at is not None:
            return True
        if wait_s <= 0 or host is None or ctx.guard.is_banned(name, ctx.clock()):
            return False
        if dial and connection_kind(host, peer) == "none":
            from libp2p.peer.peerinfo import PeerInfo

            try:
                with trio.fail_after(wait_s):
                    await host.connect(PeerInfo(peer, host.get_peerstore().addrs(peer)))
            except Exception:
                return False  # unreachable: no handshake is coming
        if connection_kind(host, peer) == "none":
            return False
        event = self._verified_events.setdefault(name, trio.Event())
        with trio.move_on_after(wait_s):
            await event.wait()
        record = ctx.book.get(name)
        return record is not None and record.verified_at is not None

    def vouched(self, peer: str) -> bool:
        """Verified now, or holding a current advert: a provider worth keeping."""
        record = self.ctx.book.get(peer)
        if record is not None and record.verified_at is not None:
            return True
        return self.ctx.book.advert(peer, self.ctx.clock()) is not None

    def reconnect_candidates(self) -> list[ID]:
        """Known ARIA nodes (current advert, not banned) this node is not connected to."""
        ctx, host = self.ctx, self._host
        if host is None:
            return []
        now = ctx.clock()
        out = []
        for record in ctx.book.known():
            advert = ctx.book.advert(record.peer_id, now)
            if advert is None or advert.withdrawn or ctx.guard.is_banned(record.peer_id, now):
                continue
            pid = libp2p_id(record.peer_id)
            if connection_kind(host, pid) == "none":
                out.append(pid)
        return out

    def on_outcome(self, peer: str, event: Any) -> None:
        ctx = self.ctx
        now = ctx.clock()
        if isinstance(event, HandshakeComplete):
            self.gatekeeper.on_verified(peer)
            if ctx.book.on_handshake(peer, event.info, now):
                log.info("handshake ok with %s (%s)", peer, event.info.agent)
                ctx.spawn(self._welcome, peer)
            self._wake(peer)
            return
        assert isinstance(event, HandshakeFailed)
        ctx.book.on_handshake_failed(peer, event.reason)
        self._wake(peer)
        # Not an ARIA node, or not a compatible one: nothing to keep a connection for.
        ctx.drop_peer(peer)
        if event.by_peer:
            log.info("peer %s refused our handshake: %s %s", peer, event.reason, event.detail)
            return
        log.info("refused the handshake of %s: %s (%s)", peer, event.reason, event.detail)
        kind = handshake_penalty(event.reason, event.violation)
        if kind and ctx.guard.penalize(peer, kind, now) is not None:
            log.warning("banning %s for %.0f s", peer, ctx.spec.guard.ban_s)

    def _wake(self, peer: str) -> None:
        event = self._verified_events.pop(peer, None)
        if event is not None:
            event.set()
