"""What the node process keeps for provenance and consent: its ledger, the contract in
force, the receipts it served per request (for the cross-signing exchange), and each
peer's standing from spot checks.

A peer's *reputation* (0..1) is the lower of two things: its work record
(:func:`aria.ledger.reputation` over the spot checks this node made of it, persisted in
the ledger) and its current protocol standing (the guard's score over its maximum).
Ranking prefers higher reputations; ``use.min_reputation`` drops a peer from the
ranking altogether, ``lend.min_reputation`` refuses to lend to it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from aria.config import AriaPaths, AriaSettings
from aria.consent import Contract, ContractBook, InForce, ensure_contract
from aria.errors import LedgerError
from aria.ledger import (
    Body,
    Ledger,
    Pending,
    SignedEntry,
    SpotCheck,
    Standing,
    record_version,
    reputation,
)
from aria.signing import NodeKey

__all__ = ["NodeProvenance"]

log = logging.getLogger(__name__)

_SERVED_MEMORY = 1024  # receipts remembered for the cross-signing exchange
_SERVED_TTL_S = 600.0


class NodeProvenance:
    """The node process's ledger, contract and peers' standing."""

    def __init__(self, paths: AriaPaths, settings: AriaSettings, key: NodeKey) -> None:
        self.key = key
        self.settings = settings.ledger
        self.ledger: Ledger | None = None
        self._standing: dict[str, Standing] = {}
        if settings.ledger.enabled:
            self.ledger = Ledger.open(paths.ledger, key)
            self._standing = self.ledger.standings()
        first = ensure_contract(paths, settings.consent, key, on_new=self._record_contract)
        self.contracts = ContractBook(paths, key.peer_id, fallback=first.contract)
        self._served: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    def _record_contract(self, contract: Contract) -> None:
        if self.ledger is not None:
            record_version(self.ledger, contract)

    def contract(self) -> InForce:
        """The contract in force now (the file is re-read when it changes)."""
        return self.contracts.current()

    # -- reputation -----------------------------------------------------------------------

    def work_reputation(self, peer: str) -> float:
        standing = self._standing.get(peer)
        return reputation(standing.passed, standing.failed) if standing else reputation(0, 0)

    def reputation(self, peer: str, guard_fraction: float) -> float:
        return min(self.work_reputation(peer), guard_fraction)

    def standing(self, peer: str) -> Standing | None:
        return self._standing.get(peer)

    # -- receipts served, for the exchange ---------------------------------------------------

    def remember_served(self, peer: str, request_sha256: str, receipt_id: str, now: float) -> None:
        self._served[(peer, request_sha256)] = (receipt_id, now)
        self._served.move_to_end((peer, request_sha256))
        while len(self._served) > _SERVED_MEMORY:
            self._served.popitem(last=False)

    def served_entry(self, peer: str, request_sha256: str, now: float) -> SignedEntry | None:
        """This node's entry for the request ``peer`` sent (recent ones only)."""
        found = self._served.get((peer, request_sha256))
        if found is None or now - found[1] > _SERVED_TTL_S or self.ledger is None:
            return None
        return self.ledger.find(found[0])

    # -- appends (the caller runs them in a thread) -----------------------------------------

    def append(self, kind: str, body: Body) -> SignedEntry | None:
        """Append to the ledger if there is one; a failure is logged, never raised."""
        if self.ledger is None:
            return None
        try:
            return self.ledger.append(kind, body)
        except LedgerError as exc:
            log.error("could not record a %s entry: %s", kind, exc.message)
            return None

    def keep_for_check(self, pending: Pending) -> bool:
        if self.ledger is None:
            return False
        try:
            return self.ledger.add_pending(pending, limit=self.settings.spot_check_pending)
        except LedgerError as exc:
            log.error("could not keep an answer for a spot check: %s", exc.message)
            return False

    def record_spotcheck(self, check: SpotCheck) -> SignedEntry | None:
        if self.ledger is None:
            return None
        entry = self.ledger.record_spotcheck(check)
        self._standing = self.ledger.standings()
        return entry
