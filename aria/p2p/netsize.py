"""Estimating how many nodes the DHT holds from one node's routing table (pure).

In Kademlia the i-th closest of N uniformly spread node keys lies, on average, at
normalised XOR distance i/(N+1) from any point. Fitting d_i = i/N over the k closest
known peers by least squares gives N = sum(i^2) / sum(i * d_i) — the estimator of
go-libp2p-kad-dht's ``netsize`` package, without its smoothing over time. With fewer
than k known peers the table is not a sample but (nearly) everyone, so the count of
peers plus ourselves is returned instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import base58

__all__ = ["estimate_network_size"]

_K = 20
_SPACE = float(2**256)


def _kad_key(peer_id: str) -> int:
    # libp2p's Kademlia keyspace: sha256 of the peer id's multihash bytes.
    return int.from_bytes(hashlib.sha256(base58.b58decode(peer_id)).digest(), "big")


def estimate_network_size(self_id: str, peers: Iterable[str], k: int = _K) -> int:
    """Estimated number of DHT nodes, ourselves included.

    Raises:
        ValueError: a peer id is not valid base58.
    """
    me = _kad_key(self_id)
    distances = sorted(_kad_key(p) ^ me for p in set(peers) if p != self_id)
    if len(distances) < k:
        return len(distances) + 1
    closest = [d / _SPACE for d in distances[:k]]
    weighted = sum(i * d for i, d in enumerate(closest, start=1))
    if weighted <= 0:
        return len(distances) + 1
    squares = sum(i * i for i in range(1, k + 1))
    return max(len(distances) + 1, round(squares / weighted))
