"""NAT traversal with py-libp2p's circuit relay v2, DCUtR and AutoNAT.

* Every node runs the relay STOP side (it can be reached through a relay) and the
  circuit transport (it can dial through one); ``--relay`` adds the HOP side with
  ``RelayLimits`` so a public node relays for others.
* Reservations are made explicitly (py-libp2p's auto-reserve only scans peers
  connected at start-up, then every 300 s, and misses a relay met later). The
  ``/p2p-circuit`` address that results is never listed by ``host.get_addrs()``,
  so the node publishes it in its advert.
* DCUtR runs with its auto-drive loop (it tries to upgrade every relayed
  connection, at most 3 attempts per peer); ARIA also starts a punch itself right
  after it dials a peer through a relay, bounded by a timeout. When punching fails
  (symmetric NAT) the relayed connection simply stays in use.
* AutoNAT v1 answers dial-back requests and asks connected peers about us. One
  verdict is enough to flip the status here (py-libp2p's default wants three
  agreeing servers, more than a small network has); the status only decides
  whether the node reserves relay slots.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.addrs import is_circuit, relay_circuit_addr
from aria.p2p.transport.host import connection_addrs
from aria.p2p.views import Reachability

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID

__all__ = ["NatTraversal", "RelayService"]

log = logging.getLogger(__name__)

_RESERVE_TIMEOUT_S = 15.0


class RelayService:
    """Limits a ``--relay`` node applies to the circuits it carries for others."""

    def __init__(
        self,
        duration_s: int = 600,
        data_bytes: int = 64 * 1024 * 1024,
        max_circuits: int = 32,
        max_reservations: int = 64,
    ) -> None:
        self.duration_s = duration_s
        self.data_bytes = data_bytes
        self.max_circuits = max_circuits
        self.max_reservations = max_reservations


class NatTraversal:
    def __init__(self, host: IHost, relay: RelayService | None) -> None:
        from libp2p.host.autonat.autonat import AutoNATService
        from libp2p.relay.circuit_v2 import (
            CircuitV2Protocol,
            CircuitV2Transport,
            DCUtRProtocol,
            RelayLimits,
        )
        from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole

        service = relay or RelayService()
        limits = RelayLimits(
            duration=service.duration_s,
            data=service.data_bytes,
            max_circuit_conns=service.max_circuits,
            max_reservations=service.max_reservations,
        )
        roles = RelayRole.STOP | RelayRole.CLIENT
        if relay is not None:
            roles |= RelayRole.HOP
        self.host = host
        self.relay_service = relay is not None
        self.protocol = CircuitV2Protocol(host, limits=limits, allow_hop=relay is not None)
        self.transport = CircuitV2Transport(
            host, self.protocol, RelayConfig(roles=roles, limits=limits)
        )
        self.dcutr = DCUtRProtocol(host)
        self.autonat = AutoNATService(host, serve=True, confirmations=1)  # type: ignore[arg-type]
        # relay peer id -> our circuit address through it
        self.reservations: dict[str, str] = {}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.tools.anyio_service import background_trio_service

        async with background_trio_service(self.protocol), background_trio_service(self.dcutr):
            task_status.started()
            await trio.sleep_forever()

    @property
    def reachability(self) -> Reachability:
        from libp2p.host.autonat.autonat import AutoNATStatus

        status = self.autonat.get_status()
        if status == AutoNATStatus.PUBLIC:
            return "public"
        if status == AutoNATStatus.PRIVATE:
            return "private"
        return "unknown"

    async def check_reachability(self, servers: list[ID]) -> Reachability:
        """Ask up to 4 peers to dial us back; relayed peers cannot judge and are skipped."""
        with trio.move_on_after(30):
            await self.autonat.check_reachability(servers[:4])
        return self.reachability

    async def reserve(self, relay: ID, nursery: trio.Nursery) -> str | None:
        """Reserve a slot on ``relay``; return our circuit address through it, or None."""
        from libp2p.relay.circuit_v2 import PROTOCOL_ID as HOP_ID

        direct = [a for a in connection_addrs(self.host, relay) if not is_circuit(a)]
        if not direct:
            return None
        stream = None
        ok = False
        with trio.move_on_after(_RESERVE_TIMEOUT_S):
            try:
                stream = await self.host.new_stream(relay, [HOP_ID])
                ok = await self.transport.reserve(stream, relay, nursery)
            except Exception as exc:
                log.info("relay reservation on %s failed: %s", relay, exc)
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.close()
        if not ok:
            return None
        addr = relay_circuit_addr(direct[0], str(relay), str(self.host.get_id()))
        self.reservations[str(relay)] = addr
        return addr

    def drop_reservation(self, relay: str) -> None:
        self.reservations.pop(relay, None)

    async def dial_relayed(self, circuit_addr: str, timeout_s: float) -> bool:
        """Connect to a peer through the relay named in ``circuit_addr``."""
        import multiaddr

        with trio.move_on_after(timeout_s):
            try:
                await self.transport.dial(multiaddr.Multiaddr(circuit_addr))
                return True
            except Exception as exc:
                log.info("relayed dial %s failed: %s", circuit_addr, exc)
        return False

    async def punch(self, peer: ID, timeout_s: float) -> bool:
        """Try DCUtR once, bounded; False leaves the relayed connection in place."""
        with trio.move_on_after(timeout_s):
            try:
                return bool(await self.dcutr.initiate_hole_punch(peer))
            except Exception as exc:
                log.info("hole punch to %s failed: %s", peer, exc)
        return False
