"""Which peers may serve which model, best first (pure; time is a parameter).

The node running on this ARIA home reports its peers (the control op ``peers``: each
verified peer's advert — models offered, load, consent summary, hardware summary — its
measured RTT and its reputation: spot checks and guard standing, 0..1).
:func:`offers_from_peers` keeps the offers a request may go to: verified peers whose
operator shares inference, offering a model whose file is not denylisted and, for a
catalog id, is exactly the catalog's pinned file. :func:`rank` orders the peers of one
model, leaving out those below this operator's ``use.min_reputation``: peers that failed
this node recently last, then those whose last advert shows no free slot (still tried:
adverts lag behind the jobs they count, and a full peer answers ``busy`` at once), then
fewest jobs in flight, a machine whose memory comfortably holds the model, lowest RTT
(unknown last), most reputation.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass

from aria.catalog import CatalogEntry, ModelId
from aria.p2p.adverts import ModelOffer
from aria.p2p.providers import offer_fault
from aria.p2p.views import PeerView

__all__ = ["Offer", "offers_from_peers", "rank"]

# A machine whose memory is at least this many times the model's floor holds it easily.
_COMFORT = 1.5


@dataclass(frozen=True)
class Offer:
    """One peer's offer of one model, with what ranking reads."""

    peer_id: str
    model: ModelOffer
    active_jobs: int
    rtt_ms: float | None
    reputation: float
    memory_gb: float
    full: bool = False  # no free slot by the peer's last advert

    def fits(self, ram_gb: float) -> bool:
        """Does the peer's machine hold a model of ``ram_gb`` comfortably (unknown: yes)?"""
        return self.memory_gb <= 0 or self.memory_gb >= ram_gb * _COMFORT


def offers_from_peers(
    peers: Iterable[PeerView],
    *,
    pins: Mapping[ModelId, str | None],
    denied: Container[str],
    own_peer_id: str | None = None,
) -> dict[ModelId, list[Offer]]:
    """The usable offers, by model id (unranked).

    ``pins`` maps catalog ids to their pinned sha256 (None: not pinned); an offer of a
    catalog id with another file, or of a ``denied`` sha256, is left out.
    """
    found: dict[ModelId, list[Offer]] = {}
    for peer in peers:
        consent = peer.consent
        if peer.peer_id == own_peer_id or not peer.verified or not consent.share_inference:
            continue
        for model in peer.models:
            pinned = pins.get(ModelId(model.id))
            if offer_fault(model.sha256, pinned=pinned, denied=model.sha256 in denied):
                continue
            offer = Offer(
                peer.peer_id,
                model,
                peer.load.active_jobs,
                peer.rtt_ms,
                peer.reputation,
                peer.hardware.memory_gb,
                full=peer.load.active_jobs >= consent.max_remote_jobs,
            )
            found.setdefault(ModelId(model.id), []).append(offer)
    return found


def rank(
    offers: Iterable[Offer],
    entry: CatalogEntry | None,
    recently_failed: Collection[str] = (),
    min_reputation: float = 0.0,
) -> list[str]:
    """Peer ids to try for one model, best first (see the module docstring)."""
    ram_gb = entry.memory.ram_gb if entry is not None else 0.0
    ordered = sorted(
        (o for o in offers if o.reputation >= min_reputation),
        key=lambda o: (
            o.peer_id in recently_failed,
            o.full,
            o.active_jobs,
            not o.fits(ram_gb),
            o.rtt_ms if o.rtt_ms is not None else math.inf,
            -o.reputation,
            o.peer_id,
        ),
    )
    return list(dict.fromkeys(o.peer_id for o in ordered))
