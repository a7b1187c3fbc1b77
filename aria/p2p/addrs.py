"""Address bookkeeping on multiaddr strings (pure).

py-libp2p advertises ``/ip4/0.0.0.0/tcp/P`` verbatim when a host listens on every
interface; peers (and DCUtR's address prediction) need concrete addresses, so the
host's address factory expands it into one address per interface IP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["expand_unspecified", "is_circuit", "is_dialable_ip", "relay_circuit_addr"]


def expand_unspecified(addrs: Iterable[str], interface_ips: Iterable[str]) -> list[str]:
    """Replace ``/ip4/0.0.0.0/...`` by the same address on each interface IPv4.

    Loopback is only used when the machine has no other address. Order is kept and
    duplicates are dropped.
    """
    ips = [ip for ip in interface_ips if ":" not in ip]
    public = [ip for ip in ips if not ipaddress.ip_address(ip).is_loopback]
    concrete = public or [ip for ip in ips if ipaddress.ip_address(ip).is_loopback]
    out: list[str] = []
    for addr in addrs:
        if addr.startswith("/ip4/0.0.0.0/"):
            rest = addr[len("/ip4/0.0.0.0") :]
            candidates = [f"/ip4/{ip}{rest}" for ip in concrete]
        else:
            candidates = [addr]
        out.extend(c for c in candidates if c not in out)
    return out


def is_circuit(addr: str) -> bool:
    return "/p2p-circuit" in addr


def is_dialable_ip(addr: str) -> bool:
    """False for unspecified addresses, which nobody can dial."""
    return not (addr.startswith("/ip4/0.0.0.0/") or addr.startswith("/ip6/::/"))


def relay_circuit_addr(relay_addr: str, relay_peer: str, self_peer: str) -> str:
    """``<relay addr>/p2p/<relay>/p2p-circuit/p2p/<self>``: how others reach us via a relay."""
    base = relay_addr.split("/p2p/")[0]
    return f"{base}/p2p/{relay_peer}/p2p-circuit/p2p/{self_peer}"
