"""Which providers a node trusts: room for vouched peers, offers that match the catalog (pure).

py-libp2p keeps the first 20 providers of a key and ignores later ones, so 20 free
peer ids announcing themselves first would hide every honest node. ARIA's store asks
:func:`provider_room` instead: a provider is *vouched* when this node has verified it
(a completed handshake) or holds its current signed advert. A vouched newcomer takes
the place of an unvouched one; nobody takes more than ``per_subnet`` places from one
/24 (IPv6 /48) of a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Admit", "Evict", "ProviderEntry", "Refuse", "offer_fault", "provider_room"]


@dataclass(frozen=True)
class ProviderEntry:
    peer_id: str
    subnet: str | None  # None: no dialable address given
    vouched: bool


@dataclass(frozen=True)
class Admit:
    pass


@dataclass(frozen=True)
class Evict:
    peer_id: str  # make room by dropping this one, then admit


@dataclass(frozen=True)
class Refuse:
    reason: str


def provider_room(
    held: Mapping[str, ProviderEntry],
    newcomer: ProviderEntry,
    *,
    capacity: int = 20,
    per_subnet: int = 2,
) -> Admit | Evict | Refuse:
    """Whether ``newcomer`` joins a key's provider list (``held``: peer id -> entry)."""
    if newcomer.peer_id in held:
        return Admit()
    if newcomer.subnet is not None:
        same = [e for e in held.values() if e.subnet == newcomer.subnet]
        if len(same) >= per_subnet:
            return _displace(same, newcomer, f"{newcomer.subnet} already holds {len(same)}")
    if len(held) < capacity:
        return Admit()
    return _displace(list(held.values()), newcomer, "the list is full")


def _displace(entries: list[ProviderEntry], newcomer: ProviderEntry, why: str) -> Evict | Refuse:
    if newcomer.vouched:
        for entry in entries:
            if not entry.vouched:
                return Evict(entry.peer_id)
    return Refuse(why)


def offer_fault(sha256: str, *, pinned: str | None, denied: bool) -> str | None:
    """Why a peer's advertised file for a model must not be used, or None.

    For a catalog id with a pinned hash the advertised sha256 must be that pin: a peer
    announcing another file under a catalog name is a squatter (or serves a different
    model). A file on the denylist is never used, whoever offers it.
    """
    if denied:
        return "the file is on ARIA's denylist"
    if pinned is not None and sha256.lower() != pinned.lower():
        return f"its file {sha256[:12]}… is not the catalog's {pinned[:12]}…"
    return None
