"""Node keys and peer ids: ARIA's pure derivation must match libp2p's exactly."""

from __future__ import annotations

import pytest
from libp2p.crypto.ed25519 import Ed25519PrivateKey as Libp2pKey
from libp2p.peer.id import ID

from aria.p2p.keys import NodeKey, peer_id_from_public_key, verify_signature


def test_peer_id_matches_libp2p() -> None:
    for _ in range(5):
        key = NodeKey.generate()
        theirs = ID.from_pubkey(Libp2pKey.from_bytes(key.seed).get_public_key())
        assert key.peer_id == theirs.to_base58()
        assert key.peer_id.startswith("12D3KooW")


def test_seed_round_trip_and_signatures() -> None:
    key = NodeKey.generate()
    again = NodeKey.from_seed(key.seed)
    assert again.peer_id == key.peer_id
    signature = key.sign(b"message")
    assert verify_signature(key.public_key, signature, b"message")
    assert not verify_signature(key.public_key, signature, b"other message")
    assert not verify_signature(NodeKey.generate().public_key, signature, b"message")
    assert not verify_signature(b"short", signature, b"message")


def test_public_key_length_is_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        peer_id_from_public_key(b"\x00" * 31)
