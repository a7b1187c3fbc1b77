"""Cross-signed receipts ``/aria/receipt/1.0.0`` (pure): messages and the requester's checks.

After a peer served an inference request, the requester opens a receipt stream::

    requester                                   server
    Ask(request_sha256)  End          -->
                                      <--  Work(entry, hash, sig)  End      (or Missing, End)
    Ack(ack, sig)        End          -->                 the server records the countersign

``request_sha256`` is the SHA-256 of the request body as the requester sent it (sorted,
compact JSON); the server remembers, per peer, which receipt each body it relayed
produced. ``Work`` is the server's own ledger entry for that generation (role
``served``), signed by the server. The requester checks it (:func:`check_work`) —
signature, signer, that it was served for *this* requester, the model, and that the
output hash is the hash of the text it received — then acknowledges what it asked and
what it received (:class:`~aria.ledger.bodies.Ack`) with its own signature. Each side
keeps both signatures in its ledger: the server in a ``countersign`` entry, the
requester in its ``consumed`` receipt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, TypeAdapter, ValidationError

from aria.ledger import (
    Ack,
    Answer,
    Countersign,
    Energy,
    ModelRef,
    Origin,
    Receipt,
    RunPlace,
    WorkProof,
    ack_signature_ok,
    new_receipt_id,
    sha256_hex,
)
from aria.ledger.entries import entry_signature_ok
from aria.p2p.codec import End, MessageDecoder, WireModel, encode_message

__all__ = [
    "MAX_FRAME",
    "RECEIPT_PROTOCOL",
    "AckFrame",
    "AskFrame",
    "Checked",
    "Missing",
    "ReceiptMessage",
    "Refuted",
    "WorkFrame",
    "check_ack",
    "check_work",
    "consumed_receipt",
    "decoder",
    "encode",
]

RECEIPT_PROTOCOL = "/aria/receipt/1.0.0"
MAX_FRAME = 65_536
_HEX64 = r"^[0-9a-f]{64}$"


class AskFrame(WireModel):
    type: Literal["ask"] = "ask"
    request_sha256: str = Field(pattern=_HEX64)


class WorkFrame(WireModel):
    type: Literal["work"] = "work"
    entry: str = Field(max_length=60_000)
    hash: str = Field(pattern=_HEX64)
    sig: str = Field(pattern=r"^[0-9a-f]{128}$")


class Missing(WireModel):
    type: Literal["missing"] = "missing"
    message: str = Field(max_length=256)


class AckFrame(WireModel):
    type: Literal["ack"] = "ack"
    ack: Ack
    sig: str = Field(pattern=r"^[0-9a-f]{128}$")


ReceiptMessage = AskFrame | WorkFrame | Missing | AckFrame | End
_ADAPTER: TypeAdapter[ReceiptMessage] = TypeAdapter(ReceiptMessage)
_TYPES = frozenset({"ask", "work", "missing", "ack", "end"})


def decoder() -> MessageDecoder[ReceiptMessage]:
    return MessageDecoder(_ADAPTER, _TYPES, MAX_FRAME)


def encode(message: WireModel) -> bytes:
    return encode_message(message, MAX_FRAME)


@dataclass(frozen=True)
class Checked:
    """A server's receipt that passed the requester's checks."""

    work: WorkProof
    receipt: Receipt


@dataclass(frozen=True)
class Refuted:
    """A server's receipt that does not hold: ``reason`` is a stable code."""

    reason: Literal["bad_signature", "not_for_us", "wrong_model", "receipt_mismatch", "malformed"]
    detail: str


def check_work(
    frame: WorkFrame, *, server: str, requester: str, model: str, answer: Answer
) -> Checked | Refuted:
    """Whether ``frame`` is ``server``'s signed receipt of serving ``requester`` the model
    ``model`` with exactly ``answer``.

    The output hash is checked for answers without tool calls (the receipt hashes the
    model's raw text, which is then the answer's content); a tool-call answer's raw text
    is not visible to the requester.
    """
    if sha256_hex(frame.entry) != frame.hash or not entry_signature_ok(
        server, frame.hash, frame.sig
    ):
        return Refuted("bad_signature", "the receipt is not signed by the serving peer")
    try:
        entry = json.loads(frame.entry)
        receipt = Receipt.model_validate(entry.get("body"), strict=False)
    except (ValueError, ValidationError, AttributeError):
        return Refuted("malformed", "the receipt is not a valid inference entry")
    if entry.get("signer") != server or entry.get("kind") != "inference":
        return Refuted("malformed", "the receipt is not the serving peer's inference entry")
    if receipt.role != "served" or receipt.peer != requester:
        return Refuted("not_for_us", "the receipt was not issued for this node")
    if receipt.model.id.casefold() != model.casefold():
        return Refuted("wrong_model", f"the receipt names {receipt.model.id}, not {model}")
    if not answer.tool_calls and receipt.output_sha256 != sha256_hex(answer.content):
        return Refuted(
            "receipt_mismatch", "the receipt's output hash is not the hash of what was received"
        )
    work = WorkProof(entry=frame.entry, hash=frame.hash, sig=frame.sig)
    return Checked(work, receipt)


def check_ack(
    frame: AckFrame, *, peer: str, receipt_id: str, receipt_hash: str
) -> Countersign | None:
    """The server's side: ``peer``'s acknowledgement of the receipt it was sent, ready to
    record — or None when it is not that (wrong signer, wrong receipt, bad signature)."""
    ack = frame.ack
    if ack.by != peer or ack.receipt != receipt_hash or not ack_signature_ok(ack, frame.sig):
        return None
    return Countersign(receipt_id=receipt_id, receipt=receipt_hash, ack=ack, ack_sig=frame.sig)


def consumed_receipt(
    *,
    server: str,
    model: str,
    answer: Answer,
    request_sha256: str,
    started_ms: int,
    duration_ms: int,
    origin: Origin,
    checked: Checked | None,
    ack: Ack | None = None,
    ack_sig: str | None = None,
) -> Receipt:
    """The requester's receipt of work a peer did for it: the peer's own figures (tokens,
    energy, model file) when its receipt checked out, the requester's view otherwise."""
    served = checked.receipt if checked is not None else None
    energy = Energy(millijoules=0, source="none", label="the serving peer gave no receipt")
    if served is not None:
        energy = Energy(
            millijoules=served.energy.millijoules,
            source="peer",
            label=f"reported by {server} ({served.energy.source}): {served.energy.label}"[:400],
        )
    return Receipt(
        id=new_receipt_id(),
        role="consumed",
        origin=origin,
        model=served.model if served is not None else ModelRef(id=model),
        ran_on=RunPlace(where="peer", peer=server),
        peer=server,
        prompt_tokens=served.prompt_tokens if served is not None else 0,
        completion_tokens=served.completion_tokens if served is not None else 0,
        finish=answer.finish_reason or (served.finish if served is not None else "unknown"),
        started_ms=started_ms,
        duration_ms=duration_ms,
        energy=energy,
        prompt_sha256=request_sha256,
        output_sha256=answer.sha256,
        work=checked.work if checked is not None else None,
        ack=ack,
        ack_sig=ack_sig,
    )
