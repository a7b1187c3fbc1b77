"""Which addresses a node dials and advertises, and how many connections one place may hold (pure).

Peers hand a node addresses (adverts, DHT answers, identify, mDNS) and could use them
to make it connect to its own loopback services, link-local devices or other hosts
on its LAN. :class:`DialPolicy` allows:

* the addresses the operator wrote (bootstrap peers), always;
* public addresses;
* private (RFC 1918, ULA) and shared (CGNAT) addresses only in LAN mode, and only in
  a subnet of one of this machine's own interfaces;
* loopback only when the node itself listens on loopback only (a single-machine lab);
* never link-local, multicast, unspecified or reserved addresses.

:class:`ConnectionCaps` bounds the connections per IP address and per /24 (IPv6: /48)
so one host or one rented block cannot fill the node's slots with free peer ids.
:func:`advertised_ips` chooses what the node tells others: the operator's announced
addresses, else its public ones and (in LAN mode) the address of its primary interface
— never VPN, container or link-local ones.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ConnectionCaps",
    "ip_port",
    "DialPolicy",
    "Scope",
    "advertised_ips",
    "scope_of",
    "subnet_of",
]

Scope = Literal["loopback", "private", "public", "unroutable"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# RFC 5737 documentation ranges are never routed on the internet; network labs (ARIA's
# NAT lab among them) use them to stand for it, so they count as public here.
_TEST_NETS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def scope_of(ip: str) -> Scope:
    """Where an address lives: this machine, a private network, the internet, nowhere."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unroutable"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return scope_of(str(address.ipv4_mapped))
    if address.is_loopback:
        return "loopback"
    if any(address in network for network in _TEST_NETS):
        return "public"
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return "unroutable"
    if address in _CGNAT or address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "unroutable"
    return "public"


def ip_port(addr: object) -> tuple[str, int] | None:
    """(IP or host name, TCP port) of a multiaddr (or its text), or None if it has neither."""
    parts = str(addr).split("/")
    try:
        return parts[2], int(parts[parts.index("tcp") + 1])
    except (IndexError, ValueError):
        return None


def subnet_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to, as text."""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True)
class DialPolicy:
    """What a node may dial (see the module docstring)."""

    lan: bool = True
    loopback: bool = False
    own_networks: tuple[IpNetwork, ...] = ()
    operator: frozenset[tuple[str, int]] = frozenset()
    own_endpoints: frozenset[tuple[str, int]] = frozenset()  # where this node listens

    @classmethod
    def for_node(
        cls,
        *,
        lan: bool,
        listen_ips: Iterable[str],
        interfaces: Iterable[tuple[str, str]],
        operator: Iterable[tuple[str, int]] = (),
        own_port: int | None = None,
    ) -> DialPolicy:
        """``interfaces``: (address, netmask) of this machine's interfaces; ``own_port``:
        the port this node listens on (its own addresses, handed back by a peer behind
        the same kind of NAT, would make it dial itself)."""
        interfaces = list(interfaces)
        listen_ips = list(listen_ips)
        listening = [scope_of(ip) for ip in listen_ips]
        own = (
            frozenset((address, own_port) for address, _mask in interfaces)
            if own_port is not None
            else frozenset()
        )
        networks = []
        for address, netmask in interfaces:
            try:
                network = ipaddress.ip_network(f"{address}/{netmask}", strict=False)
            except ValueError:
                continue
            if scope_of(address) == "private":
                networks.append(network)
        return cls(
            lan=lan,
            loopback=bool(listening) and all(s == "loopback" for s in listening),
            own_networks=tuple(networks),
            operator=frozenset(operator),
            own_endpoints=own,
        )

    def allows(self, ip: str, port: int) -> bool:
        if (ip, port) in self.operator:
            return True
        if (ip, port) in self.own_endpoints:
            return False
        scope = scope_of(ip)
        if scope == "public":
            return True
        if scope == "loopback":
            return self.loopback
        if scope == "private" and self.lan:
            address = ipaddress.ip_address(ip)
            return any(address in network for network in self.own_networks)
        return False


@dataclass
class ConnectionCaps:
    """Connections per IP and per subnet; ``admit`` before a connection, ``add``/``remove``."""

    max_per_ip: int
    max_per_subnet: int
    _ips: Counter[str] = field(default_factory=Counter)
    _subnets: Counter[str] = field(default_factory=Counter)

    def admit(self, ip: str) -> bool:
        try:
            subnet = subnet_of(ip)
        except ValueError:
            return False
        return self._ips[ip] < self.max_per_ip and self._subnets[subnet] < self.max_per_subnet

    def add(self, ip: str) -> None:
        self._ips[ip] += 1
        self._subnets[subnet_of(ip)] += 1

    def remove(self, ip: str) -> None:
        if self._ips[ip] > 0:
            self._ips[ip] -= 1
            self._subnets[subnet_of(ip)] -= 1
        self._ips += Counter()  # drop zero counts
        self._subnets += Counter()

    def count(self, ip: str) -> int:
        return self._ips[ip]


def advertised_ips(
    *,
    listen_ips: Iterable[str],
    interface_ips: Iterable[str],
    primary_ip: str | None,
    lan: bool,
) -> list[str]:
    """The IPs to advertise for a host listening on ``listen_ips`` (``0.0.0.0`` = all).

    A specific listen address is the operator's choice and is kept (unless it cannot be
    dialled). For the wildcard: public interface addresses, plus the primary interface's
    private address in LAN mode (every private one on a machine without a default route:
    an isolated LAN); a loopback-only machine advertises loopback.
    """
    chosen: list[str] = []
    for ip in listen_ips:
        if ip in ("0.0.0.0", "::"):
            for candidate in interface_ips:
                scope = scope_of(candidate)
                primary = primary_ip is None or candidate == primary_ip
                if scope == "public" or (lan and scope == "private" and primary):
                    chosen.append(candidate)
        elif scope_of(ip) != "unroutable":
            chosen.append(ip)
    if not chosen and any(scope_of(ip) == "loopback" for ip in interface_ips):
        chosen.append("127.0.0.1")
    return list(dict.fromkeys(chosen))
