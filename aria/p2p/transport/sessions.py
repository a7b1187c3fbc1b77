"""Connection events and the handshake run over libp2p streams.

``watch_connections`` registers a libp2p notifee that turns connect/disconnect into
plain callbacks (libp2p awaits notifees inline, so the callbacks only schedule work).
``Handshakes`` opens (dialer side) or accepts (listener side) the handshake stream,
lets the sans-I/O ``HandshakeMachine`` decide, and reports one outcome per stream;
the caller applies the peer guard's verdicts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.handshake import HandshakeEvent, HandshakeFailed, HandshakeMachine, ReplayGuard
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.keys import NodeKey, PeerId
from aria.p2p.spec import ProtocolSpec
from aria.p2p.transport.pump import pump

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream
    from libp2p.peer.id import ID

__all__ = ["Handshakes", "Outcome", "watch_connections"]

log = logging.getLogger(__name__)

Outcome = Callable[[str, Any], None]


def _remote_ip(conn: Any) -> str | None:
    """The remote IP of a direct connection (None for a relayed or unknown one)."""
    try:
        if any("/p2p-circuit" in str(a) for a in conn.get_transport_addresses()):
            return None
        address = conn.muxed_conn.get_remote_address()
    except Exception:
        return None
    return str(address[0]) if address else None


def watch_connections(
    host: IHost,
    on_connected: Callable[[ID, bool, int, str | None], None],
    on_disconnected: Callable[[ID, int, bool], None],
) -> None:
    """Call ``on_connected(peer, outbound, connection, remote_ip)`` and
    ``on_disconnected(peer, connection, last)`` per connection (``connection`` is a key)."""
    from libp2p.abc import INotifee

    network = host.get_network()

    class _Watcher(INotifee):
        async def connected(self, net: Any, conn: Any) -> None:
            peer = conn.muxed_conn.peer_id
            direction = str(getattr(conn, "direction", "unknown")).lower()
            outbound = "outbound" in direction
            if "inbound" not in direction and not outbound:
                # Unknown direction (some relayed upgrades): a fixed tie-break makes
                # exactly one side start the handshake.
                outbound = str(host.get_id()) < str(peer)
            on_connected(peer, outbound, id(conn), _remote_ip(conn))

        async def disconnected(self, net: Any, conn: Any) -> None:
            peer = conn.muxed_conn.peer_id
            on_disconnected(peer, id(conn), not network.connections.get(peer))

        async def opened_stream(self, net: Any, stream: Any) -> None:
            return None

        async def closed_stream(self, net: Any, stream: Any) -> None:
            return None

        async def listen(self, net: Any, addr: Any) -> None:
            return None

        async def listen_close(self, net: Any, addr: Any) -> None:
            return None

    network.register_notifee(_Watcher())


class Handshakes:
    """Runs ARIA handshakes for one node; outcomes go to ``on_outcome(peer, event)``."""

    def __init__(
        self,
        host: IHost,
        key: NodeKey,
        spec: ProtocolSpec,
        agent: str,
        hardware: HardwareSummary,
        on_outcome: Outcome,
        clock: Callable[[], float] = time.time,
        contract: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._host = host
        self._contract = contract
        self._key = key
        self._spec = spec
        self._agent = agent
        self._hardware = hardware
        self._on_outcome = on_outcome
        self._clock = clock
        self._replay = ReplayGuard(spec.replay_cache_size, 2 * spec.max_clock_skew_s)

    def _machine(self, peer: ID, *, initiator: bool) -> HandshakeMachine:
        return HandshakeMachine(
            initiator=initiator,
            key=self._key,
            agent=self._agent,
            hardware=self._hardware,
            expected_peer=PeerId(str(peer)),
            replay=self._replay,
            spec=self._spec,
            contract=self._contract(),
        )

    async def _run(self, stream: INetStream, peer: ID, *, initiator: bool) -> None:
        machine = self._machine(peer, initiator=initiator)
        events: list[HandshakeEvent] = []
        with trio.move_on_after(self._spec.handshake_timeout_s + 2):
            events = await pump(stream, machine, self._clock)
        if not machine.done or not events:
            events = [HandshakeFailed("timeout", "handshake stalled")]
        failed = any(isinstance(e, HandshakeFailed) for e in events)
        with contextlib.suppress(Exception):
            await (stream.reset() if failed else stream.close())
        for event in events:
            self._on_outcome(str(peer), event)

    async def initiate(self, peer: ID) -> None:
        """Open the handshake stream to ``peer`` (the dialer's side)."""
        from libp2p.custom_types import TProtocol

        try:
            with trio.fail_after(self._spec.handshake_timeout_s):
                stream = await self._host.new_stream(peer, [TProtocol(self._spec.handshake_id)])
        except Exception as exc:
            # Not an ARIA node, or gone already: nothing to score.
            self._on_outcome(str(peer), HandshakeFailed("no_handshake", str(exc), by_peer=True))
            return
        await self._run(stream, peer, initiator=True)

    async def accept(self, stream: INetStream) -> None:
        """Serve an inbound handshake stream (the listener's side)."""
        await self._run(stream, stream.muxed_conn.peer_id, initiator=False)
