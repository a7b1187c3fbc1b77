"""ARIA's wire constants, read from the packaged ``protocol.toml``.

The TOML file is the one place protocol ids, versions and limits are written down;
code and ``docs/protocol-spec.md`` both follow it. ``load_spec()`` returns a frozen
value that callers pass around (tests build variants with ``dataclasses.replace``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

__all__ = ["AdvertSpec", "GuardSpec", "LibrarySpec", "ProtocolSpec", "load_spec", "major_of"]


@dataclass(frozen=True)
class AdvertSpec:
    ttl_s: float
    refresh_s: float
    max_ttl_s: float
    tombstone_ttl_s: float


@dataclass(frozen=True)
class GuardSpec:
    rate_per_s: float
    burst: float
    initial: float
    ban_below: float
    ban_s: float
    recover_per_s: float
    penalties: MappingProxyType[str, float]


@dataclass(frozen=True)
class LibrarySpec:
    protocol: str
    key_prefix: str
    chunk_size: int
    max_chunks: int
    message_frame: int
    piece_size: int
    max_requests: int
    offer_timeout_s: float
    stall_timeout_s: float
    refresh_s: float


@dataclass(frozen=True)
class ProtocolSpec:
    version: str
    handshake_id: str
    dht_id: str
    mdns_service: str
    dht_namespace: str
    rendezvous_key: str
    model_key_prefix: str
    handshake_frame: int
    advert_record: int
    control_frame: int
    handshake_frames: int
    handshake_timeout_s: float
    max_clock_skew_s: float
    replay_cache_size: int
    adverts: AdvertSpec
    guard: GuardSpec
    library: LibrarySpec

    @property
    def major(self) -> int:
        return major_of(self.version)


def major_of(version: str) -> int:
    """The major number of a ``MAJOR.MINOR`` version string.

    Raises:
        ValueError: ``version`` is not two dot-separated non-negative integers.
    """
    major, sep, minor = version.partition(".")
    if not sep or not major.isdigit() or not minor.isdigit():
        raise ValueError(f"not a MAJOR.MINOR version: {version!r}")
    return int(major)


def _parse(data: dict[str, Any]) -> ProtocolSpec:
    ids, limits, guard, library = data["ids"], data["limits"], data["guard"], data["library"]
    return ProtocolSpec(
        version=str(data["protocol"]["version"]),
        handshake_id=ids["handshake"],
        dht_id=ids["dht"],
        mdns_service=ids["mdns_service"],
        dht_namespace=ids["dht_namespace"],
        rendezvous_key=ids["rendezvous_key"],
        model_key_prefix=ids["model_key_prefix"],
        handshake_frame=int(limits["handshake_frame"]),
        advert_record=int(limits["advert_record"]),
        control_frame=int(limits["control_frame"]),
        handshake_frames=int(limits["handshake_frames"]),
        handshake_timeout_s=float(limits["handshake_timeout_s"]),
        max_clock_skew_s=float(limits["max_clock_skew_s"]),
        replay_cache_size=int(limits["replay_cache_size"]),
        adverts=AdvertSpec(**{k: float(v) for k, v in data["adverts"].items()}),
        guard=GuardSpec(
            **{k: float(v) for k, v in guard.items() if k != "penalties"},
            penalties=MappingProxyType({k: float(v) for k, v in guard["penalties"].items()}),
        ),
        library=LibrarySpec(
            protocol=str(library["protocol"]),
            key_prefix=str(library["key_prefix"]),
            chunk_size=int(library["chunk_size"]),
            max_chunks=int(library["max_chunks"]),
            message_frame=int(library["message_frame"]),
            piece_size=int(library["piece_size"]),
            max_requests=int(library["max_requests"]),
            offer_timeout_s=float(library["offer_timeout_s"]),
            stall_timeout_s=float(library["stall_timeout_s"]),
            refresh_s=float(library["refresh_s"]),
        ),
    )


@cache
def load_spec() -> ProtocolSpec:
    """The protocol constants shipped with this ARIA version."""
    text = resources.files("aria.p2p").joinpath("protocol.toml").read_text(encoding="utf-8")
    return _parse(tomllib.loads(text))
