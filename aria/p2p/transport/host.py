"""Building ARIA's libp2p host and reading connection facts from it.

The host uses the node's Ed25519 identity, TCP, Noise as the ONLY security
transport (py-libp2p's default set also offers plaintext and secio, which ARIA
must never accept) and yamux. A node's host (:class:`HostNet` given) also dials
only what its :class:`~aria.p2p.netpolicy.DialPolicy` allows, caps connections per
IP and subnet and in total, never runs py-libp2p's dial-everyone auto-connector, and
tells peers only the addresses :func:`~aria.p2p.netpolicy.advertised_ips` chooses.
Everything libp2p-specific the rest of ARIA needs about connections is answered
here, as plain strings.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from aria.p2p.addrs import expand_unspecified, is_circuit
from aria.p2p.keys import NodeKey
from aria.p2p.netpolicy import ConnectionCaps, DialPolicy, advertised_ips
from aria.p2p.views import ConnectionKind

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID

__all__ = [
    "HostNet",
    "build_host",
    "connection_addrs",
    "interfaces",
    "primary_ipv4",
    "connection_kind",
    "libp2p_id",
    "ping_rtt_ms",
    "quiet_libp2p_logs",
]


class _BelowLevel(logging.Filter):
    """Drops ``prefix.*`` records under ``level``, whatever level their logger has."""

    def __init__(self, prefixes: tuple[str, ...], level: int) -> None:
        super().__init__()
        self._prefixes, self._level = prefixes, level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self._level or not record.name.startswith(self._prefixes)


def quiet_libp2p_logs(handler: logging.Handler | None = None, level: int = logging.ERROR) -> None:
    """Send py-libp2p's log to ``handler`` (default: nowhere) at ``level`` and above.

    py-libp2p logs routine peer failures as warnings, configures its ``libp2p`` logger
    when first imported (no handler, no propagation: Python's last-resort handler then
    prints to stderr), and some modules set their own level (the auto-connector's is
    INFO). So import it first, then override, and filter on the handler too: a child
    logger's own level would otherwise let its records through.
    """
    import libp2p  # noqa: F401  (its import-time logging setup must run before ours)

    logger = logging.getLogger("libp2p")
    logger.handlers.clear()
    target = handler or logging.NullHandler()
    target.addFilter(_BelowLevel(("libp2p", "multiaddr"), level))
    logger.addHandler(target)
    logger.setLevel(level)
    logger.propagate = False
    logging.getLogger("multiaddr").setLevel(level)


def interfaces() -> list[tuple[str, str]]:
    """(address, netmask) of every IPv4 interface address of this machine."""
    return [
        (a.address, a.netmask or "255.255.255.255")
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET
    ]


def primary_ipv4(route_table: Path = Path("/proc/net/route")) -> str | None:
    """The IPv4 address of the interface holding the default route (None if unknown)."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    names = [f[0] for f in (line.split() for line in lines) if len(f) > 2 and f[1] == "00000000"]
    for addrs in (psutil.net_if_addrs().get(name, []) for name in names):
        for addr in addrs:
            if addr.family == socket.AF_INET:
                return str(addr.address)
    return None


@dataclass(frozen=True)
class HostNet:
    """How a node's host meets the network (see the module docstring)."""

    policy: Callable[[], DialPolicy]
    caps: ConnectionCaps
    max_connections: int
    reconnect: Callable[[], list[Any]]  # known ARIA peers worth re-dialling
    lan: bool = True
    announce: tuple[str, ...] = ()


def _plain_addrs(candidates: list[Any]) -> list[Any]:
    import multiaddr

    ips = [ip for ip, _mask in interfaces()]
    return [multiaddr.Multiaddr(a) for a in expand_unspecified([str(a) for a in candidates], ips)]


def _node_addrs(net: HostNet) -> Callable[[list[Any]], list[Any]]:
    """What the host tells peers (identify) about itself."""

    def factory(candidates: list[Any]) -> list[Any]:
        import multiaddr

        if net.announce:
            return [multiaddr.Multiaddr(a) for a in net.announce]
        out: list[str] = []
        for addr in (str(a) for a in candidates):
            parts = addr.split("/")
            if len(parts) < 5 or parts[1] not in ("ip4", "ip6") or is_circuit(addr):
                out.append(addr)
                continue
            ips = advertised_ips(
                listen_ips=[parts[2]],
                interface_ips=[ip for ip, _mask in interfaces()],
                primary_ip=primary_ipv4(),
                lan=net.lan,
            )
            rest = "/".join(parts[3:])
            out.extend(f"/{parts[1]}/{ip}/{rest}" for ip in ips)
        return [multiaddr.Multiaddr(a) for a in dict.fromkeys(out)]

    return factory


def build_host(key: NodeKey, net: HostNet | None = None) -> IHost:
    """A libp2p host for ``key`` (not yet listening; run it with ``host.run``).

    Without ``net`` it is a plain py-libp2p host (tests use one as a foreign peer).
    py-libp2p's own mDNS stays off: it would announce ``0.0.0.0`` (see ``transport.mdns``).
    """
    from libp2p import new_host
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.crypto.keys import KeyPair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport

    private = Ed25519PrivateKey.from_bytes(key.seed)
    key_pair = KeyPair(private, private.get_public_key())
    security = {NOISE_ID: NoiseTransport(key_pair, noise_privkey=new_x25519().private_key)}
    if net is None:
        return new_host(
            key_pair=key_pair,
            sec_opt=security,
            muxer_preference="YAMUX",
            addrs_factory=_plain_addrs,
        )
    from aria.p2p.transport.gate import BoundedAutoConnector, CappedGate, PolicedTCP

    config = ConnectionConfig(
        max_connections=net.max_connections,
        min_connections=0,
        low_watermark=net.max_connections // 2,
        high_watermark=net.max_connections,
        max_connections_per_peer=2,
    )
    host = new_host(
        key_pair=key_pair,
        sec_opt=security,
        muxer_preference="YAMUX",
        addrs_factory=_node_addrs(net),
        connection_config=config,
        transports=[PolicedTCP(net.policy)],
    )
    swarm: Any = host.get_network()
    swarm.connection_gate = CappedGate(net.caps)
    swarm.auto_connector = BoundedAutoConnector(swarm, net.reconnect)
    return host


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
