"""The provenance ledger: every inference this node ran or used, signed and hash-chained.

* ``entries``  -- canonical entry text, hash, signature (pure);
* ``bodies``   -- what each kind of entry says: receipts, countersignatures, spot checks,
  contract versions, checkpoints (pure);
* ``chain``    -- verifying a chain: the first bad entry and why (pure);
* ``store``    -- the append-only SQLite file (WAL, fsync on commit, signed head,
  compaction behind checkpoints), peers' standing and pending checks;
* ``export``   -- the portable JSON Lines export and its verification;
* ``totals``   -- energy and token totals per model, peer and role (pure);
* ``recorder`` -- how the node records one generation (the interface the node calls);
* ``spotcheck`` / ``reputation`` -- which peers' answers to re-execute, whether they match,
  and what the record says of a peer (pure).

Format and guarantees: docs/ledger.md.
"""

from aria.ledger.bodies import (
    Ack,
    Body,
    Checkpoint,
    ContractChange,
    Countersign,
    Energy,
    ModelRef,
    Origin,
    Receipt,
    Role,
    RunPlace,
    SpotCheck,
    WorkProof,
    ack_signature_ok,
    sign_ack,
)
from aria.ledger.chain import Head, Problem, StoredRow, VerifyReport, verify_chain
from aria.ledger.entries import GENESIS, Entry, SignedEntry, canonical, sha256_hex
from aria.ledger.export import EXPORT_FORMAT, verify_exports, write_export
from aria.ledger.recorder import (
    LedgerRecorder,
    Provenance,
    Recorder,
    json_digest,
    new_receipt_id,
    record_version,
)
from aria.ledger.reputation import MISMATCH_WEIGHT, NEUTRAL, reputation
from aria.ledger.spotcheck import (
    Answer,
    Comparison,
    answer_from_chunks,
    checkable,
    compare,
    sampled,
)
from aria.ledger.store import LEDGER_FILE, Ledger, Pending, Standing
from aria.ledger.totals import Group, Totals, fold_receipts

__all__ = [
    "EXPORT_FORMAT",
    "GENESIS",
    "LEDGER_FILE",
    "MISMATCH_WEIGHT",
    "NEUTRAL",
    "Ack",
    "Answer",
    "Body",
    "Checkpoint",
    "Comparison",
    "ContractChange",
    "Countersign",
    "Energy",
    "Entry",
    "Group",
    "Head",
    "Ledger",
    "LedgerRecorder",
    "ModelRef",
    "Origin",
    "Pending",
    "Problem",
    "Provenance",
    "Receipt",
    "Recorder",
    "Role",
    "RunPlace",
    "SignedEntry",
    "SpotCheck",
    "Standing",
    "StoredRow",
    "Totals",
    "VerifyReport",
    "WorkProof",
    "ack_signature_ok",
    "answer_from_chunks",
    "canonical",
    "checkable",
    "compare",
    "fold_receipts",
    "json_digest",
    "new_receipt_id",
    "record_version",
    "reputation",
    "sampled",
    "sha256_hex",
    "sign_ack",
    "verify_chain",
    "verify_exports",
    "write_export",
]
