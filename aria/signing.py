"""Ed25519 node keys and libp2p peer ids, without importing libp2p (pure).

A peer id is derived as the libp2p peer-id spec says (specs/peer-ids/peer-ids.md):
the protobuf ``PublicKey{Type: Ed25519, Data: <32 bytes>}`` (36 bytes, short enough
for the identity multihash), multihash-wrapped and base58btc-encoded, which gives the
familiar ``12D3KooW...`` form. ``tests/p2p`` checks it against libp2p's own ``ID``.
Keeping this pure lets the protocol state machines and the provenance ledger sign and
verify without pulling py-libp2p (a one-second import) into every module; it sits on a
low floor because both the network (``aria.p2p``) and the ledger (``aria.ledger``) need it.
"""

from __future__ import annotations

from typing import NewType

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "NodeKey",
    "PeerId",
    "peer_id_from_public_key",
    "public_key_from_peer_id",
    "verify_signature",
]

PeerId = NewType("PeerId", str)

# protobuf field 1 (Type) = 1 (Ed25519); field 2 (Data), length 32.
_PROTOBUF_ED25519_PREFIX = b"\x08\x01\x12\x20"
# multihash "identity" (0x00) of 36 bytes.
_IDENTITY_MULTIHASH_PREFIX = b"\x00\x24"


def peer_id_from_public_key(public_key: bytes) -> PeerId:
    """The libp2p peer id of a raw 32-byte Ed25519 public key.

    Raises:
        ValueError: ``public_key`` is not 32 bytes.
    """
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    encoded = _IDENTITY_MULTIHASH_PREFIX + _PROTOBUF_ED25519_PREFIX + public_key
    return PeerId(base58.b58encode(encoded).decode("ascii"))


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The raw Ed25519 public key an ``12D3KooW...`` peer id embeds (identity multihash).

    Raises:
        ValueError: not base58, or not the identity multihash of an Ed25519 key.
    """
    try:
        raw = base58.b58decode(peer_id.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f"{peer_id!r} is not a base58 peer id") from None
    prefix = _IDENTITY_MULTIHASH_PREFIX + _PROTOBUF_ED25519_PREFIX
    if len(raw) != len(prefix) + 32 or not raw.startswith(prefix):
        raise ValueError(f"{peer_id!r} is not the peer id of an Ed25519 key")
    return raw[len(prefix) :]


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class NodeKey:
    """A node's Ed25519 signing key and the peer id it implies."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.peer_id: PeerId = peer_id_from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        """Rebuild a key from its 32-byte private seed.

        Raises:
            ValueError: ``seed`` is not 32 bytes.
        """
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed (what libp2p's Ed25519 key is built from)."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, the format the identity file is stored in."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)
