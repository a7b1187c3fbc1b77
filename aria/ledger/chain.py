"""Verifying a chain of signed entries (pure): the first bad entry and why.

A chain is valid when, entry by entry in ``seq`` order:

* its text is canonical JSON (``not_canonical``) and hashes to its stored hash
  (``hash_mismatch``);
* its ``seq`` is the stored one and one more than the previous entry's (``out_of_order``,
  ``missing``), and its ``prev`` is the previous entry's hash (``broken_link``);
* the first entry is entry 1 with ``prev`` = ``GENESIS``, or is anchored by a checkpoint
  entry later in the chain whose ``through_seq``/``through_hash`` name the entry just
  before it (``unanchored``): compaction removes old entries but leaves that anchor;
* it is signed by the expected signer (``foreign_signer``, ``bad_signature``);
* its body is a valid body of its kind, and the signatures it carries from peers verify
  (``bad_body``, ``bad_peer_signature``): a consumed receipt's server entry (signed by
  the peer it names) and this node's acknowledgement of it, a countersign's ack;
* the columns stored beside it for queries say what the entry says (``column_mismatch``);
* the signed head, when given, names the last entry (``truncated``): deleting the newest
  entries is caught too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from aria.ledger.bodies import (
    Checkpoint,
    Countersign,
    Receipt,
    ack_signature_ok,
    body_of,
)
from aria.ledger.entries import (
    ENTRY_VERSION,
    GENESIS,
    SignedEntry,
    canonical,
    entry_signature_ok,
    sha256_hex,
)
from aria.signing import NodeKey, public_key_from_peer_id, verify_signature

__all__ = [
    "Head",
    "Problem",
    "StoredRow",
    "VerifyReport",
    "columns_of",
    "head_signature_ok",
    "sign_head",
    "verify_chain",
]

_HEAD_DOMAIN = b"aria-ledger-head/1\x00"


@dataclass(frozen=True)
class StoredRow:
    """A signed entry and the query columns stored beside it (none in an export)."""

    entry: SignedEntry
    columns: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Head:
    """The newest entry, signed separately, so truncation shows."""

    seq: int
    hash: str
    sig: str


@dataclass(frozen=True)
class Problem:
    seq: int | None
    reason: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    signer: str
    entries: int
    first_seq: int | None
    last_seq: int | None
    anchor: str  # "genesis", "checkpoint <seq>" or "none"
    problem: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        problem = self.problem
        return {
            "ok": self.ok,
            "signer": self.signer,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "anchor": self.anchor,
            "problem": None
            if problem is None
            else {"seq": problem.seq, "reason": problem.reason, "detail": problem.detail},
        }


def _head_message(seq: int, hash_hex: str) -> bytes:
    return _HEAD_DOMAIN + seq.to_bytes(8, "big") + bytes.fromhex(hash_hex)


def sign_head(seq: int, hash_hex: str, key: NodeKey) -> Head:
    return Head(seq, hash_hex, key.sign(_head_message(seq, hash_hex)).hex())


def head_signature_ok(head: Head, signer: str) -> bool:
    try:
        message = _head_message(head.seq, head.hash)
        return verify_signature(public_key_from_peer_id(signer), bytes.fromhex(head.sig), message)
    except (ValueError, OverflowError):
        return False


def columns_of(decoded: Mapping[str, Any]) -> dict[str, Any]:
    """The query columns an entry implies: kind, time, receipt id, peer and model."""
    body = decoded.get("body")
    body = body if isinstance(body, dict) else {}
    model = body.get("model")
    model_id = model.get("id") if isinstance(model, dict) else model
    return {
        "kind": decoded.get("kind"),
        "at_ms": decoded.get("at_ms"),
        "ref": body.get("id", body.get("receipt_id")),
        "peer": body.get("peer"),
        "model": model_id if isinstance(model_id, str) else None,
    }


class _Bad(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _check_entry(row: StoredRow, signer: str) -> dict[str, Any]:
    """Everything about one entry that needs no neighbour; its decoded object."""
    entry = row.entry
    try:
        decoded = entry.decoded()
        text = canonical(decoded)
    except ValueError as exc:
        raise _Bad("not_canonical", f"the entry is not canonical JSON ({exc})") from None
    if text != entry.text:
        raise _Bad("not_canonical", "the entry's text is not in canonical form")
    if sha256_hex(entry.text) != entry.hash:
        raise _Bad("hash_mismatch", "the entry does not hash to its stored hash")
    if decoded.get("v") != ENTRY_VERSION:
        raise _Bad("bad_body", f"unknown entry version {decoded.get('v')!r}")
    if decoded.get("seq") != entry.seq:
        raise _Bad("out_of_order", f"the entry says it is #{decoded.get('seq')}")
    if decoded.get("signer") != signer:
        raise _Bad("foreign_signer", f"signed as {decoded.get('signer')!r}, expected {signer}")
    if not entry_signature_ok(signer, entry.hash, entry.sig):
        raise _Bad("bad_signature", "the signature does not verify with the signer's key")
    body = decoded.get("body")
    kind = decoded.get("kind")
    try:
        if not isinstance(body, dict) or not isinstance(kind, str):
            raise ValueError("kind and body missing")
        parsed = body_of(kind, body)
    except (ValueError, ValidationError) as exc:
        raise _Bad("bad_body", f"invalid {kind} body: {str(exc)[:200]}") from None
    _check_peer_signatures(parsed, signer)
    wanted = columns_of(decoded)
    for name, value in row.columns.items():
        if wanted.get(name) != value:
            raise _Bad(
                "column_mismatch", f"stored column {name}={value!r}, entry says {wanted[name]!r}"
            )
    return decoded


def _check_peer_signatures(body: object, signer: str) -> None:
    """A consumed receipt's server entry and our acknowledgement; a countersign's ack."""
    if isinstance(body, Receipt) and body.role == "consumed":
        work, ack, ack_sig = body.work, body.ack, body.ack_sig
        if work is None and ack is None and ack_sig is None:
            return  # the server gave no receipt: recorded as unconfirmed
        if work is None or ack is None or ack_sig is None:
            raise _Bad("bad_body", "a consumed receipt carries the server's entry and our ack")
        try:
            server = json.loads(work.entry).get("signer")
        except (ValueError, AttributeError):
            server = None
        if sha256_hex(work.entry) != work.hash or server != body.peer:
            raise _Bad("bad_peer_signature", "the server's entry does not match its hash or peer")
        if not entry_signature_ok(str(server), work.hash, work.sig):
            raise _Bad("bad_peer_signature", "the server's signature does not verify")
        if ack.by != signer or ack.receipt != work.hash or not ack_signature_ok(ack, ack_sig):
            raise _Bad("bad_peer_signature", "our acknowledgement does not verify")
    elif isinstance(body, Countersign) and (
        body.ack.receipt != body.receipt or not ack_signature_ok(body.ack, body.ack_sig)
    ):
        raise _Bad("bad_peer_signature", "the requester's countersignature does not verify")


def verify_chain(
    rows: Iterable[StoredRow], *, signer: str, head: Head | None = None
) -> VerifyReport:
    """Check ``rows`` (in stored order) as one chain signed by ``signer``.

    Stops at the first bad entry and names it; ``head`` (the store's signed head)
    also catches deleted newest entries.
    """
    count, first_seq, last_seq = 0, None, None
    prev_hash: str | None = None
    first_prev: str | None = None
    checkpoints: dict[int, str] = {}
    found: Problem | None = None

    def report(problem: Problem | None, anchor: str = "none") -> VerifyReport:
        return VerifyReport(problem is None, signer, count, first_seq, last_seq, anchor, problem)

    for row in rows:
        seq = row.entry.seq
        try:
            decoded = _check_entry(row, signer)
        except _Bad as bad:
            found = found or Problem(seq, bad.reason, bad.detail)
            continue
        if decoded["kind"] == "checkpoint":  # a valid one anchors, even after a problem
            checkpoint = Checkpoint.model_validate(decoded["body"])
            checkpoints[checkpoint.through_seq] = checkpoint.through_hash
        if found is not None:
            continue  # only looking for checkpoints now
        if last_seq is not None and seq < last_seq + 1:
            found = Problem(seq, "out_of_order", f"entry #{seq} follows #{last_seq}")
            continue
        if last_seq is not None and seq > last_seq + 1:
            detail = f"entry #{last_seq + 1} is missing (#{seq} follows #{last_seq})"
            found = Problem(last_seq + 1, "missing", detail)
            continue
        if prev_hash is not None and decoded.get("prev") != prev_hash:
            found = Problem(seq, "broken_link", f"its prev is not the hash of entry #{last_seq}")
            continue
        if first_seq is None:
            first_seq, first_prev = seq, str(decoded.get("prev"))
        count, last_seq, prev_hash = count + 1, seq, row.entry.hash
    anchor = "none"
    if first_seq is not None:
        if first_seq == 1 and first_prev == GENESIS:
            anchor = "genesis"
        elif checkpoints.get(first_seq - 1) == first_prev:
            anchor = f"checkpoint #{first_seq - 1}"
        else:
            detail = (
                f"the chain starts at #{first_seq} and no checkpoint vouches for the "
                "entries before it: they were deleted"
            )
            unanchored = Problem(max(1, first_seq - 1), "unanchored", detail)
            if found is None or (found.seq or 0) > (unanchored.seq or 0):
                found = unanchored
    if found is not None:
        return report(found, anchor)
    if head is not None:
        if not head_signature_ok(head, signer):
            return report(Problem(head.seq, "bad_signature", "the signed head does not verify"))
        if head.seq != (last_seq or 0) or (last_seq is not None and head.hash != prev_hash):
            detail = f"the signed head names entry #{head.seq}; the chain ends at #{last_seq}"
            return report(Problem((last_seq or 0) + 1, "truncated", detail), anchor)
    return report(None, anchor)
