"""Opening this node's ledger and consent contract for a command that serves inference.

``aria api start``, ``aria chat`` and ``aria infer`` record a receipt of every
generation; this is where they get the node's key, its ledger, and the contract whose
hash each receipt names (created, signed and recorded on first use).
"""

from __future__ import annotations

from dataclasses import dataclass

from aria.config import AriaPaths, AriaSettings
from aria.consent import Contract, ContractBook, ensure_contract
from aria.ledger import LedgerRecorder, record_version
from aria.p2p.consent_change import open_ledger

__all__ = ["Records", "open_records"]


@dataclass(frozen=True)
class Records:
    """What a serving command records with: the recorder (None when ``ledger.enabled`` is
    off) and the consent contract in force (re-read when it changes)."""

    recorder: LedgerRecorder | None
    contracts: ContractBook


def open_records(paths: AriaPaths, settings: AriaSettings) -> Records:
    """Raises: IdentityError: the node key is unreadable; LedgerError: the ledger cannot
    be opened; ContractError: the first contract cannot be written."""
    from aria.p2p.identity import load_or_create_identity

    key = load_or_create_identity(paths)
    ledger = open_ledger(paths, key) if settings.ledger.enabled else None

    def record(contract: Contract) -> None:
        if ledger is not None:
            record_version(ledger, contract)

    first = ensure_contract(paths, settings.consent, key, on_new=record)
    contracts = ContractBook(paths, key.peer_id, fallback=first.contract)
    if ledger is None:
        return Records(None, contracts)
    recorder = LedgerRecorder(
        ledger,
        contract=lambda: contracts.current().sha256,
        record_texts=settings.ledger.record_texts,
        max_entries=settings.ledger.max_entries,
        archive_dir=paths.ledger / "archive",
    )
    return Records(recorder, contracts)
