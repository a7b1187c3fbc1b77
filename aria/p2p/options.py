"""How ``aria node start`` was asked to run: its flags over the ``[p2p]`` settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NodeOptions"]


@dataclass(frozen=True)
class NodeOptions:
    """The peer node's listening, discovery and connection options."""

    port: int = 8765
    listen_host: str = "0.0.0.0"
    bootstrap: tuple[str, ...] = ()
    relay: bool = False
    mdns: bool = True
    discovery_interval_s: float = 10.0
    nat_interval_s: float = 15.0
    lan: bool = True
    announce: tuple[str, ...] = ()
    max_connections: int = 64
    max_per_ip: int = 8
    max_per_subnet: int = 16
    max_unverified: int = 16
