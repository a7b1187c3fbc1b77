"""What each kind of ledger entry says (pure, typed; integer units only).

* ``inference``: one receipt per generation this node ran or used (:class:`Receipt`).
* ``countersign``: a requester's acknowledgement of a receipt this node served
  (:class:`Countersign`): the serving node keeps the requester's signature.
* ``spotcheck``: the outcome of re-executing a peer's work (:class:`SpotCheck`).
* ``contract``: a new version of the operator's consent contract (:class:`ContractChange`).
* ``checkpoint``: the anchor left when older entries are compacted (:class:`Checkpoint`).

A requester's acknowledgement (:class:`Ack`) is signed on its own, with the domain
``b"aria-ack/1\\x00"`` over the SHA-256 of its canonical text, so it can travel inside
both nodes' entries and still be checked against the requester's key.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aria.ledger.entries import canonical
from aria.signing import NodeKey, public_key_from_peer_id, verify_signature

__all__ = [
    "KINDS",
    "Ack",
    "Body",
    "Checkpoint",
    "ContractChange",
    "Countersign",
    "Energy",
    "ModelRef",
    "Origin",
    "Receipt",
    "Role",
    "RunPlace",
    "SpotCheck",
    "Verdict",
    "WorkProof",
    "ack_signature_ok",
    "body_of",
    "sign_ack",
]

_HEX64 = r"^[0-9a-f]{64}$"
_ACK_DOMAIN = b"aria-ack/1\x00"

Role = Literal["local", "served", "consumed"]
Origin = Literal["api", "cli", "peer", "spotcheck"]
Verdict = Literal["match", "mismatch", "receipt_mismatch"]


class Body(BaseModel):
    """Base of every entry body: frozen, strict, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return body


class ModelRef(Body):
    id: str = Field(min_length=1, max_length=128)
    sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")


class RunPlace(Body):
    """Where the layers ran: here, on one peer, or split (``devices``: ``local`` and peer ids)."""

    where: Literal["local", "peer", "split"]
    peer: str | None = Field(default=None, max_length=128)
    devices: tuple[str, ...] = ()


class Energy(Body):
    """Energy in millijoules and how it was obtained (``label`` says exactly how)."""

    millijoules: int = Field(ge=0)
    source: Literal["rapl", "estimate", "peer", "none"]
    label: str = Field(default="", max_length=400)


class Ack(Body):
    """The requester's word on a served receipt: what it asked and what it received."""

    receipt: str = Field(pattern=_HEX64)  # the serving node's entry hash
    by: str = Field(max_length=128)  # the requester's peer id
    request_sha256: str = Field(pattern=_HEX64)
    received_sha256: str = Field(pattern=_HEX64)
    received_at_ms: int = Field(ge=0)


class WorkProof(Body):
    """The serving node's signed entry, as it sent it."""

    entry: str = Field(max_length=65536)
    hash: str = Field(pattern=_HEX64)
    sig: str = Field(pattern=r"^[0-9a-f]{128}$")


class Receipt(Body):
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    role: Role
    origin: Origin
    model: ModelRef
    ran_on: RunPlace
    peer: str | None = Field(default=None, max_length=128)  # the other party, if any
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    finish: str = Field(max_length=32)
    started_ms: int = Field(ge=0)
    duration_ms: int = Field(ge=0)
    energy: Energy
    prompt_sha256: str = Field(pattern=_HEX64)
    output_sha256: str = Field(pattern=_HEX64)
    prompt_text: str | None = None  # only when the operator records texts
    output_text: str | None = None
    contract: str | None = Field(default=None, pattern=_HEX64)
    work: WorkProof | None = None  # consumed: the server's receipt
    ack: Ack | None = None  # consumed: what this node acknowledged
    ack_sig: str | None = Field(default=None, pattern=r"^[0-9a-f]{128}$")


class Countersign(Body):
    receipt_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    receipt: str = Field(pattern=_HEX64)  # this node's entry hash it acknowledges
    ack: Ack
    ack_sig: str = Field(pattern=r"^[0-9a-f]{128}$")


class SpotCheck(Body):
    peer: str = Field(max_length=128)
    receipt_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    model: str = Field(max_length=128)
    verdict: Verdict
    received_sha256: str = Field(pattern=_HEX64)
    expected_sha256: str = Field(pattern=_HEX64)
    first_difference: int | None = Field(default=None, ge=0)  # character index
    check_receipt_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    detail: str | None = Field(default=None, max_length=200)


class ContractChange(Body):
    """A contract version; ``text`` is its canonical JSON (the bytes ``sha256`` covers)."""

    version: int = Field(ge=1)
    sha256: str = Field(pattern=_HEX64)
    text: str = Field(max_length=65536)


class Checkpoint(Body):
    through_seq: int = Field(ge=1)
    through_hash: str = Field(pattern=_HEX64)
    compacted: int = Field(ge=0)  # entries removed by this compaction
    archive: str | None = Field(default=None, max_length=255)  # export file they went to
    totals: dict[str, Any] = Field(default_factory=dict)


KINDS: dict[str, type[Body]] = {
    "inference": Receipt,
    "countersign": Countersign,
    "spotcheck": SpotCheck,
    "contract": ContractChange,
    "checkpoint": Checkpoint,
}


def body_of(kind: str, body: dict[str, Any]) -> Body:
    """Parse an entry's body by its kind (``ValueError``/``ValidationError`` otherwise)."""
    model = KINDS.get(kind)
    if model is None:
        raise ValueError(f"unknown entry kind {kind!r}")
    return model.model_validate(body, strict=False)


def _ack_digest(ack: Ack) -> bytes:
    return hashlib.sha256(canonical(ack.to_body()).encode("ascii")).digest()


def sign_ack(ack: Ack, key: NodeKey) -> str:
    """The requester's signature of ``ack`` (hex)."""
    if ack.by != key.peer_id:
        raise ValueError("an acknowledgement is signed by the peer it names")
    return key.sign(_ACK_DOMAIN + _ack_digest(ack)).hex()


def ack_signature_ok(ack: Ack, sig_hex: str) -> bool:
    try:
        public_key = public_key_from_peer_id(ack.by)
        signature = bytes.fromhex(sig_hex)
    except ValueError:
        return False
    return verify_signature(public_key, signature, _ACK_DOMAIN + _ack_digest(ack))
