"""Building ARIA's libp2p host and reading connection facts from it.

The host uses the node's Ed25519 identity, TCP, Noise as the ONLY security
transport (py-libp2p's default set also offers plaintext and secio, which ARIA
must never accept) and yamux. Everything libp2p-specific the rest of ARIA needs
about connections is answered here, as plain strings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psutil

from aria.p2p.addrs import expand_unspecified, is_circuit
from aria.p2p.keys import NodeKey
from aria.p2p.views import ConnectionKind

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID

__all__ = [
    "build_host",
    "connection_addrs",
    "connection_kind",
    "libp2p_id",
    "ping_rtt_ms",
    "quiet_libp2p_logs",
]


def quiet_libp2p_logs(handler: logging.Handler | None = None, level: int = logging.ERROR) -> None:
    """Send py-libp2p's log to ``handler`` (default: nowhere) at ``level`` and above.

    py-libp2p logs routine peer failures as warnings, and configures its ``libp2p``
    logger when first imported (no handler, no propagation: Python's last-resort
    handler then prints to stderr). So import it first, then override.
    """
    import libp2p  # noqa: F401  (its import-time logging setup must run before ours)

    logger = logging.getLogger("libp2p")
    logger.handlers.clear()
    logger.addHandler(handler or logging.NullHandler())
    logger.setLevel(level)
    logger.propagate = False
    logging.getLogger("multiaddr").setLevel(level)


def _interface_ips() -> list[str]:
    import socket

    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET
    ]


def _addrs_factory(candidates: list[Any]) -> list[Any]:
    import multiaddr

    expanded = expand_unspecified([str(a) for a in candidates], _interface_ips())
    return [multiaddr.Multiaddr(a) for a in expanded]


def build_host(key: NodeKey) -> IHost:
    """A libp2p host for ``key`` (not yet listening; run it with ``host.run``).

    py-libp2p's own mDNS stays off: it would announce ``0.0.0.0`` (see ``transport.mdns``).
    """
    from libp2p import new_host
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.crypto.keys import KeyPair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport

    private = Ed25519PrivateKey.from_bytes(key.seed)
    key_pair = KeyPair(private, private.get_public_key())
    security = {NOISE_ID: NoiseTransport(key_pair, noise_privkey=new_x25519().private_key)}
    return new_host(
        key_pair=key_pair,
        sec_opt=security,
        muxer_preference="YAMUX",
        addrs_factory=_addrs_factory,
    )


def libp2p_id(peer_id: str) -> ID:
    """Raises: ValueError for a string that is not a peer id."""
    from libp2p.peer.id import ID

    return ID.from_base58(peer_id)


def _connections(host: IHost, peer: ID) -> list[Any]:
    conns = host.get_network().connections.get(peer, [])
    return list(conns) if isinstance(conns, list | tuple) else [conns]


def connection_addrs(host: IHost, peer: ID) -> list[str]:
    out: list[str] = []
    for conn in _connections(host, peer):
        try:
            out.extend(str(a) for a in conn.get_transport_addresses())
        except Exception:  # a closing connection may not answer; skip it
            continue
    return out


def connection_kind(host: IHost, peer: ID) -> ConnectionKind:
    """``direct`` if any connection to ``peer`` is not relayed, else ``relayed``/``none``."""
    conns = _connections(host, peer)
    if not conns:
        return "none"
    for conn in conns:
        try:
            addrs = [str(a) for a in conn.get_transport_addresses()]
        except Exception:
            continue
        if not any(is_circuit(a) for a in addrs):
            return "direct"
    return "relayed"


async def ping_rtt_ms(host: IHost, peer: ID, timeout_s: float = 10.0) -> float | None:
    """Round-trip time of one libp2p ping, in milliseconds (None if it failed)."""
    import time

    import trio
    from libp2p.host.ping import ID as PING_ID
    from libp2p.host.ping import perform_ping_roundtrip

    with trio.move_on_after(timeout_s):
        try:
            stream = await host.new_stream(peer, [PING_ID])
            start = time.perf_counter()
            await perform_ping_roundtrip(stream)
            rtt = (time.perf_counter() - start) * 1000
            await stream.close()
            return rtt
        except Exception:  # an unreachable peer simply has no RTT
            return None
    return None
