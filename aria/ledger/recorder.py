"""How a node records what it ran: the interface the generation path calls, and the
ledger-backed implementation.

The node (``aria.node``) builds one :class:`~aria.ledger.bodies.Receipt` per generation
when it completes — tokens, hashes, timing, energy — and hands it to a :class:`Recorder`;
who asked (:class:`Provenance`) comes from the caller (the API, the CLI, a peer relayed by
the node process). :class:`LedgerRecorder` fills in the consent contract in force,
keeps the texts only if the operator asked for them, appends the receipt (fsynced),
and compacts the ledger behind a checkpoint when it outgrows its bound.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aria.errors import LedgerError
from aria.ledger.bodies import ContractChange, Origin, Receipt
from aria.ledger.entries import SignedEntry
from aria.ledger.store import Ledger

__all__ = [
    "LedgerRecorder",
    "Provenance",
    "Recorder",
    "json_digest",
    "new_receipt_id",
    "record_version",
]

log = logging.getLogger(__name__)

_COMPACT_EVERY = 256  # appends between two size checks


def new_receipt_id() -> str:
    return secrets.token_hex(16)


def json_digest(value: Any) -> str:
    """SHA-256 of ``value`` as sorted, compact JSON (a request or a job; floats allowed)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """Who a generation is for: ``origin`` and, for a peer, its id and the contract hash
    its request was admitted under. ``receipt_id`` is known before generation starts
    (the API returns it as ``x-aria-receipt``)."""

    origin: Origin = "api"
    peer: str | None = None
    contract: str | None = None
    receipt_id: str = field(default_factory=new_receipt_id)


class Recorder(Protocol):
    """Records one completed generation; returns the signed entry."""

    def record(self, receipt: Receipt) -> SignedEntry: ...


class LedgerRecorder:
    """Appends receipts to ``ledger``; thread-safe (called from worker threads)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        contract: Callable[[], str | None],
        record_texts: bool = False,
        max_entries: int = 200_000,
        archive_dir: Path | None = None,
    ) -> None:
        self.ledger = ledger
        self._contract = contract
        self._record_texts = record_texts
        self._max_entries = max_entries
        self._archive_dir = archive_dir
        self._appended = 0
        self._lock = threading.Lock()

    def record(self, receipt: Receipt) -> SignedEntry:
        """Raises: LedgerError: the write failed."""
        update: dict[str, Any] = {}
        if receipt.contract is None:
            update["contract"] = self._contract()
        if not self._record_texts:
            update |= {"prompt_text": None, "output_text": None}
        entry = self.ledger.append("inference", receipt.model_copy(update=update))
        self._maybe_compact()
        return entry

    def _maybe_compact(self) -> None:
        with self._lock:
            self._appended += 1
            if self._appended % _COMPACT_EVERY:
                return
        if self.ledger.count() <= self._max_entries:
            return
        archive = None
        if self._archive_dir is not None:
            archive = self._archive_dir / f"ledger-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        try:
            self.ledger.compact(self._max_entries // 2, archive=archive)
        except LedgerError as exc:
            log.warning("ledger compaction failed: %s", exc.message)


class Versioned(Protocol):
    """A consent contract as the ledger records it (``aria.consent.Contract``)."""

    @property
    def version(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def canonical_text(self) -> str: ...


def record_version(ledger: Ledger, contract: Versioned) -> SignedEntry:
    """A new contract version, so receipts naming its hash can be traced to its terms."""
    change = ContractChange(
        version=contract.version, sha256=contract.sha256, text=contract.canonical_text()
    )
    return ledger.append("contract", change)
