"""LAN discovery with py-libp2p's mDNS under ARIA's own service name.

ARIA announces and browses ``_aria._udp.local.`` (``protocol.toml``), never the generic
libp2p service ``_p2p._udp.local.`` that IPFS nodes use: a node neither tells IPFS
nodes on the LAN about itself nor dials the ones it would hear of.

py-libp2p's built-in mDNS (``new_host(enable_mDNS=True)``) announces the host's raw
transport addresses, i.e. ``/ip4/0.0.0.0/tcp/P`` when listening on every interface,
which no peer can dial (they end up dialling themselves). ARIA therefore runs the
same ``MDNSDiscovery`` itself, fed with the host's concrete addresses
(``tests/p2p/test_p2p_natlab.py::test_mdns_finds_a_peer_on_the_same_lan``).

Finds are reported through py-libp2p's process-wide ``peerDiscovery`` object on
zeroconf's thread; ``lan_peers`` bridges them into a trio channel (bounded: finds
beyond 64 pending ones are dropped, mDNS repeats them anyway).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.addrs import is_circuit, is_dialable_ip

if TYPE_CHECKING:
    from libp2p.abc import IHost

__all__ = ["announce_on_lan", "lan_peers"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def announce_on_lan(host: IHost, service: str) -> Iterator[bool]:
    """Announce ``host`` as ``service`` inside the block; yields False if mDNS cannot run."""
    from libp2p.discovery.mdns.mdns import MDNSDiscovery

    addrs = [a for a in (str(x) for x in host.get_addrs()) if is_dialable_ip(a)]
    addrs = [a for a in addrs if not is_circuit(a) and "/tcp/" in a]
    if not addrs:
        yield False
        return
    port = int(addrs[0].split("/tcp/")[1].split("/")[0])
    try:
        # No ``host=``: py-libp2p would then announce the raw ``0.0.0.0`` transport address.
        mdns = MDNSDiscovery(
            host.get_network(), port=port, listen_addrs=addrs, service_type=service
        )
        mdns.start()
    except Exception as exc:  # no multicast route, no interface...: run without mDNS
        log.warning("mDNS is unavailable here: %s", exc)
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(Exception):
            mdns.stop()


async def lan_peers() -> AsyncIterator[Any]:
    """Yield each ``PeerInfo`` mDNS discovers, until cancelled (only ARIA's service is
    browsed, so only ARIA nodes are found)."""
    from libp2p.discovery.events.peerDiscovery import peerDiscovery

    send, receive = trio.open_memory_channel[Any](64)
    token = trio.lowlevel.current_trio_token()

    def found(info: Any) -> None:  # runs on zeroconf's thread
        with contextlib.suppress(trio.WouldBlock, trio.RunFinishedError):
            trio.from_thread.run_sync(send.send_nowait, info, trio_token=token)

    peerDiscovery.register_peer_discovered_handler(found)
    try:
        async for info in receive:
            yield info
    finally:
        peerDiscovery.unregister_peer_discovered_handler(found)
