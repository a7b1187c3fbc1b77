"""Dialling peers: bootstrap multiaddrs, and ARIA nodes by the addresses in their advert.

Every dial is bounded. An advert's addresses come from the network, so an address
that does not parse is skipped, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.addrs import is_circuit
from aria.p2p.adverts import Advert
from aria.p2p.transport.nat import NatTraversal

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID

__all__ = ["DIAL_TIMEOUT_S", "dial_advert", "dial_bootstrap"]

log = logging.getLogger(__name__)

DIAL_TIMEOUT_S = 8.0
_RELAY_DIAL_TIMEOUT_S = 15.0
_PUNCH_TIMEOUT_S = 30.0


def _parse(addrs: Iterable[str]) -> list[Any]:
    import multiaddr

    parsed = []
    for addr in addrs:
        try:
            parsed.append(multiaddr.Multiaddr(addr))
        except Exception:
            log.info("skipping unparseable address %r", addr)
    return parsed


async def dial_bootstrap(host: IHost, addrs: Iterable[str]) -> None:
    """Connect to each bootstrap peer not connected yet."""
    from libp2p.peer.peerinfo import info_from_p2p_addr

    connected = {str(p) for p in host.get_connected_peers()}
    for addr in addrs:
        try:
            info = info_from_p2p_addr(_parse([addr])[0])
        except Exception:
            log.error("ignoring bootstrap address %s: not a .../p2p/<peer id> multiaddr", addr)
            continue
        if str(info.peer_id) in connected:
            continue
        with trio.move_on_after(DIAL_TIMEOUT_S):
            try:
                await host.connect(info)
                log.info("connected to bootstrap peer %s", info.peer_id)
            except Exception as exc:
                log.info("bootstrap %s unreachable: %s", addr, exc)


async def dial_advert(host: IHost, nat: NatTraversal, peer: ID, advert: Advert) -> None:
    """Direct addresses first; else each relayed address, then a bounded hole punch."""
    from libp2p.peer.peerinfo import PeerInfo

    direct = _parse(a for a in advert.addrs if not is_circuit(a))
    if direct:
        with trio.move_on_after(DIAL_TIMEOUT_S):
            try:
                await host.connect(PeerInfo(peer, direct))
                return
            except Exception as exc:
                log.info("direct dial to %s failed: %s", peer, exc)
    for circuit in advert.relayed_addrs:
        if await nat.dial_relayed(circuit, _RELAY_DIAL_TIMEOUT_S):
            log.info("connected to %s through its relay", peer)
            if await nat.punch(peer, _PUNCH_TIMEOUT_S):
                log.info("hole punch to %s succeeded", peer)
            return
