"""Split-inference candidates from the peer network: what peers advertise, as the planner sees it.

Pure: peer views in (the node's ``peers`` report: advert consent summary, hardware
summary, measured RTT, guard score), :class:`~aria.split.placement.Candidate` values out.
Opening the tunnels that give consenting peers a local endpoint is the I/O edge
(:mod:`aria.split.network`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from aria.p2p.views import PeerView
from aria.rpc.ggml_rpc import LOOPBACK_HOST
from aria.split.placement import Candidate

__all__ = ["candidates_from_peers", "lenders"]

_GIB = 1024**3


def lenders(peers: Sequence[PeerView]) -> list[str]:
    """Peer ids worth a tunnel: verified ARIA peers whose operator lends compute."""
    return [p.peer_id for p in peers if p.verified and p.consent.share_rpc]


def candidates_from_peers(
    peers: Sequence[PeerView],
    ports: Mapping[str, int],
    rtt_ms: Mapping[str, float],
    *,
    full_score: float,
) -> list[Candidate]:
    """One candidate per verified peer.

    A lender with a tunnel (``ports``: peer id -> local tunnel port) offers its advertised
    ``consent.rpc_memory_gb`` with its advertised cores as threads, at its measured RTT
    (``rtt_ms`` overrides the view's); reputation is its guard score over ``full_score``.
    A peer whose operator has not consented becomes a non-consenting candidate, so the
    planner says why it was skipped. A lender without a tunnel is left out: the caller
    knows why its tunnel did not open.
    """
    candidates = []
    for peer in peers:
        if not peer.verified:
            continue
        consenting = peer.consent.share_rpc
        if consenting and peer.peer_id not in ports:
            continue
        rtt = rtt_ms.get(peer.peer_id, peer.rtt_ms)
        candidates.append(
            Candidate(
                peer_id=peer.peer_id,
                endpoint=(
                    f"{LOOPBACK_HOST}:{ports[peer.peer_id]}"
                    if consenting
                    else f"p2p:{peer.peer_id}"  # never dialled: the planner skips it
                ),
                offered_bytes=int(peer.consent.rpc_memory_gb * _GIB) if consenting else 0,
                threads=max(1, peer.hardware.cpu_cores),
                rtt_s=rtt / 1000 if rtt is not None else math.inf,
                reputation=max(0.0, min(1.0, peer.score / full_score)) if full_score > 0 else 1.0,
                consenting=consenting,
            )
        )
    return candidates
