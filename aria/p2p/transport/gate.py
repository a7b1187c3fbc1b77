"""ARIA's hooks into py-libp2p's swarm: which addresses it dials, who may connect.

* :class:`PolicedTCP` is the host's only transport: a TCP transport that refuses to
  dial an address the :class:`~aria.p2p.netpolicy.DialPolicy` does not allow, whoever
  handed it over (an advert, a DHT answer, identify, mDNS, DCUtR, the auto-connector).
* :class:`CappedGate` replaces the swarm's connection gate: a new connection from (or
  to) an address whose IP or subnet already holds its share is refused before the
  Noise handshake (:class:`~aria.p2p.netpolicy.ConnectionCaps`, counted from the
  connections the node holds).
* :class:`BoundedAutoConnector` replaces the auto-connector, which would dial any peer
  in the peer store every few seconds: it only re-dials known ARIA nodes, two per
  round, while the node holds fewer than ``low_water`` connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.connection_gate import ConnectionGate
from libp2p.transport.exceptions import OpenConnectionError
from libp2p.transport.tcp.tcp import TCP

from aria.p2p.netpolicy import ConnectionCaps, DialPolicy, ip_port

if TYPE_CHECKING:
    from libp2p.peer.id import ID
    from multiaddr import Multiaddr

__all__ = ["BoundedAutoConnector", "CappedGate", "PolicedTCP"]

log = logging.getLogger(__name__)

_DIAL_TIMEOUT_S = 8.0


class PolicedTCP(TCP):
    """TCP that dials only what the node's current policy allows."""

    def __init__(self, policy: Callable[[], DialPolicy]) -> None:
        super().__init__()
        self._policy = policy

    def _check(self, maddr: Multiaddr) -> None:
        target = ip_port(maddr)
        if target is None or not self._policy().allows(*target):
            log.debug("refusing to dial %s", maddr)
            raise OpenConnectionError(f"ARIA's dial policy refuses {maddr}")

    async def dial(self, maddr: Multiaddr) -> Any:
        self._check(maddr)
        return await super().dial(maddr)

    async def dial_with_source(self, maddr: Multiaddr, source: tuple[str, int]) -> Any:
        self._check(maddr)
        return await super().dial_with_source(maddr, source)


class CappedGate(ConnectionGate):
    """The swarm's gate, counting connections per IP and subnet."""

    def __init__(self, caps: ConnectionCaps) -> None:
        super().__init__()
        self.caps = caps

    async def is_allowed(self, remote_addr: Multiaddr) -> bool:
        target = ip_port(remote_addr)
        if target is None or "/p2p-circuit" in str(remote_addr):
            return True  # relayed: the relay's own connection was counted
        allowed = self.caps.admit(target[0])
        if not allowed:
            log.debug("connection cap reached for %s", target[0])
        return allowed

    def is_in_allow_list(self, remote_addr: Multiaddr) -> bool:
        return False


class BoundedAutoConnector(AutoConnector):
    """Reconnects to known ARIA nodes only, a couple per round, when connections run low."""

    def __init__(
        self,
        swarm: Any,
        candidates: Callable[[], list[ID]],
        *,
        low_water: int = 4,
        per_round: int = 2,
        interval_s: float = 30.0,
    ) -> None:
        super().__init__(swarm, auto_connect_interval=interval_s)
        self._candidates = candidates
        self._low_water = low_water
        self._per_round = per_round

    async def maybe_connect(self) -> None:
        if self.swarm.get_total_connections() >= self._low_water:
            return
        for peer in self._candidates()[: self._per_round]:
            with trio.move_on_after(_DIAL_TIMEOUT_S):
                try:
                    await self.swarm.dial_peer(peer)
                except Exception as exc:  # an unreachable peer is retried next round
                    log.debug("re-dial of %s failed: %s", peer, exc)
