"""The node's key and peer ids as the network uses them (defined in :mod:`aria.signing`)."""

from __future__ import annotations

from aria.signing import (
    NodeKey,
    PeerId,
    peer_id_from_public_key,
    public_key_from_peer_id,
    verify_signature,
)

__all__ = [
    "NodeKey",
    "PeerId",
    "peer_id_from_public_key",
    "public_key_from_peer_id",
    "verify_signature",
]
