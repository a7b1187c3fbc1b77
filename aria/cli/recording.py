"""Opening this node's ledger and consent contract for a command that serves inference.

``aria api start``, ``aria chat`` and ``aria infer`` record a receipt of every
generation; this is where they get the node's key, its ledger, and the contract whose
hash each receipt names (created, signed and recorded on first use).
"""

from __future__ import annotations

from aria.config import AriaPaths, AriaSettings
from aria.consent import ContractBook, InForce, ensure_contract
from aria.ledger import Ledger, LedgerRecorder, record_version
from aria.signing import NodeKey

__all__ = ["contract_in_force", "open_ledger", "open_recorder"]


def open_ledger(paths: AriaPaths, key: NodeKey) -> Ledger:
    """Raises: LedgerError."""
    return Ledger.open(paths.ledger, key)


def contract_in_force(
    paths: AriaPaths, settings: AriaSettings, key: NodeKey, ledger: Ledger
) -> InForce:
    """The signed contract; the first one is made from ``[consent]`` and recorded."""
    return ensure_contract(paths, settings.consent, key, on_new=lambda c: record_version(ledger, c))


def open_recorder(paths: AriaPaths, settings: AriaSettings) -> LedgerRecorder | None:
    """The recorder for this node's generations (None when ``ledger.enabled`` is off).

    Raises:
        IdentityError: the node key is unreadable; LedgerError: the ledger cannot be opened.
    """
    from aria.p2p.identity import load_or_create_identity

    if not settings.ledger.enabled:
        return None
    key = load_or_create_identity(paths)
    ledger = open_ledger(paths, key)
    first = contract_in_force(paths, settings, key, ledger)
    book = ContractBook(paths, key.peer_id, fallback=first.contract)
    return LedgerRecorder(
        ledger,
        contract=lambda: book.current().sha256,
        record_texts=settings.ledger.record_texts,
        max_entries=settings.ledger.max_entries,
        archive_dir=paths.ledger / "archive",
    )
