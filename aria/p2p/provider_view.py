"""This process's view of which peers serve which models, kept fresh from the local node.

The API and the CLI run in their own processes; the node running on the same ARIA home
knows the network. :class:`ProviderView` asks it for its peers (the control op
``peers``) at most every ``ttl_s`` seconds, turns the answer into ranked offers
(:mod:`aria.p2p.offers`) and remembers for ``failure_s`` seconds the peers that failed
this process, so the next request tries another first. No node running means no
offers: this machine's models serve alone. The view never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import anyio

from aria.catalog import Catalog, CatalogEntry, Denylist, ModelId
from aria.config import AriaPaths
from aria.errors import AriaError, ConsentRefused, PeerError
from aria.p2p.control import NodeClient
from aria.p2p.offers import Offer, offers_from_peers, rank
from aria.p2p.views import PeerView

__all__ = ["ProviderView"]

log = logging.getLogger(__name__)

_ASK_TIMEOUT_S = 3.0


class ProviderView:
    """Peers' offers as last reported by the node on ``paths`` (refresh, then read)."""

    def __init__(
        self,
        paths: AriaPaths,
        catalog: Catalog,
        denylist: Denylist,
        *,
        ttl_s: float = 5.0,
        failure_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = paths
        self._pins = {entry.id: entry.sha256 for entry in catalog.entries}
        self._denied = denylist
        self._ttl_s, self._failure_s, self._clock = ttl_s, failure_s, clock
        self._offers: dict[ModelId, list[Offer]] = {}
        self._peers: list[PeerView] = []
        self._fetched_at: float | None = None
        self._failed: dict[str, float] = {}

    async def refresh(self) -> None:
        """Ask the node again if the last answer is older than ``ttl_s``."""
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._ttl_s:
            return
        self._peers, own = await anyio.to_thread.run_sync(self._fetch)
        self._offers = offers_from_peers(
            self._peers, pins=self._pins, denied=self._denied, own_peer_id=own
        )
        self._fetched_at = self._clock()

    def _fetch(self) -> tuple[list[PeerView], str | None]:
        client = NodeClient.located(self._paths, timeout_s=_ASK_TIMEOUT_S)
        if client is None:
            return [], None
        try:
            return client.peers(), client.peer_id
        except AriaError as exc:
            log.debug("no peer offers: %s", exc.message)
            return [], None

    def refusal(self, model: str, min_reputation: float = 0.0) -> PeerError | None:
        """Why no peer takes ``model`` although some offer it (their contracts lend no
        inference, all below ``use.min_reputation``, or every one busy), or None when no
        verified peer offers it at all."""
        offering = [p for p in self._peers if p.verified and any(m.id == model for m in p.models)]
        if not offering:
            return None
        names = ", ".join(p.peer_id for p in offering)
        if not any(p.consent.share_inference for p in offering):
            return ConsentRefused(
                f"the peers serving {model} ({names}) do not accept inference requests "
                "from peers (task_not_allowed)"
            )
        if all(p.reputation < min_reputation for p in offering):
            return ConsentRefused(
                f"the peers serving {model} ({names}) are all below this node's "
                f"use.min_reputation {min_reputation:.2f} (low_reputation)"
            )
        return PeerError(f"the peers serving {model} ({names}) are all at their job limit (busy)")

    def failed(self, peer: str) -> None:
        """``peer`` could not serve this process: rank it last for a while."""
        self._failed[peer] = self._clock()

    def ranked(
        self, entries: Mapping[ModelId, CatalogEntry], *, min_reputation: float = 0.0
    ) -> dict[ModelId, list[str]]:
        """For each offered model, its peers best first (``entries``: what is known of
        the models, for the hardware fit; peers below ``min_reputation`` left out)."""
        now = self._clock()
        self._failed = {p: t for p, t in self._failed.items() if now - t < self._failure_s}
        return {
            model: rank(offers, entries.get(model), self._failed, min_reputation)
            for model, offers in self._offers.items()
        }

    def offered_entries(self, known: Mapping[ModelId, CatalogEntry]) -> list[CatalogEntry]:
        """Entries for the models only peers hold (from the cards in their adverts)."""
        found: dict[ModelId, CatalogEntry] = {}
        for model, offers in self._offers.items():
            if model in known:
                continue
            for offer in offers:
                card = offer.model.card
                entry = card.entry(model, offer.model.sha256) if card is not None else None
                if entry is not None:
                    found[model] = entry
                    break
        return list(found.values())
