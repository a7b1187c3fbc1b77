"""Signed envelopes: how a node vouches for a piece of JSON (pure).

An envelope carries the payload as the exact JSON text that was signed, so the
verifier never re-serialises anything; the signature covers a domain tag
(``aria-record/<kind>``) so a handshake hello can never be replayed as an advert.
The signer's peer id is derived from the embedded public key and must equal the
payload's ``peer_id``: nobody can publish a record in another node's name.

Modelled on libp2p's signed envelopes (specs/RFC/0002-signed-envelopes.md), in JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from aria.p2p.codec import WireModel
from aria.p2p.keys import NodeKey, PeerId, peer_id_from_public_key, verify_signature

__all__ = ["RecordError", "RecordKind", "SignedEnvelope", "open_envelope", "seal"]

RecordKind = Literal["hello", "advert", "manifest"]

_B64 = r"^[A-Za-z0-9+/]*={0,2}$"


class RecordError(Exception):
    """A record that must not be trusted; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SignedEnvelope(WireModel):
    kind: RecordKind
    # A library manifest of the largest file (max_chunks hashes) is ~1.7 MB; the frame
    # limit of each protocol (adverts 64 KiB, library offers 2 MiB) bounds it further.
    payload: str = Field(max_length=2_000_000)
    public_key: str = Field(pattern=_B64, max_length=64)
    signature: str = Field(pattern=_B64, max_length=128)


P = TypeVar("P", bound=BaseModel)


def _signed_bytes(kind: str, payload: str) -> bytes:
    return f"aria-record/{kind}\x00".encode() + payload.encode("utf-8")


def seal(kind: RecordKind, payload: BaseModel, key: NodeKey) -> SignedEnvelope:
    """Serialise ``payload`` and sign it with ``key``."""
    text = json.dumps(payload.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    return SignedEnvelope(
        kind=kind,
        payload=text,
        public_key=base64.b64encode(key.public_key).decode("ascii"),
        signature=base64.b64encode(key.sign(_signed_bytes(kind, text))).decode("ascii"),
    )


def open_envelope(envelope: SignedEnvelope, kind: RecordKind, model: type[P]) -> tuple[PeerId, P]:
    """Verify ``envelope`` and parse its payload as ``model``.

    Returns the signer's peer id and the payload.

    Raises:
        RecordError: wrong kind, undecodable key or signature, bad signature, payload
            that does not parse as ``model``, or a payload ``peer_id`` other than the
            signer's.
    """
    if envelope.kind != kind:
        raise RecordError("wrong_kind", f"expected a {kind} record, got {envelope.kind}")
    try:
        public_key = base64.b64decode(envelope.public_key, validate=True)
        signature = base64.b64decode(envelope.signature, validate=True)
        signer = peer_id_from_public_key(public_key)
    except (binascii.Error, ValueError):
        raise RecordError("bad_key", "the record's public key is not an Ed25519 key") from None
    if not verify_signature(public_key, signature, _signed_bytes(kind, envelope.payload)):
        raise RecordError("bad_signature", "the record's signature does not verify")
    try:
        payload = model.model_validate_json(envelope.payload)
    except ValidationError as exc:
        raise RecordError("bad_payload", f"invalid {kind} payload: {exc}") from None
    claimed = getattr(payload, "peer_id", None)
    if claimed != signer:
        raise RecordError("peer_mismatch", f"record names {claimed} but is signed by {signer}")
    return signer, payload
