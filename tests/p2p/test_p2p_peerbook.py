"""The peer book stays bounded: unverified peers without a valid advert are forgotten."""

from __future__ import annotations

from aria.p2p.adverts import build_advert
from aria.p2p.handshake import NodeInfo
from aria.p2p.keys import NodeKey
from aria.p2p.peers import PeerBook
from aria.p2p.spec import load_spec

SPEC = load_spec()
NOW = 1_000_000.0


def _info(peer: str) -> NodeInfo:
    return NodeInfo(peer_id=peer, protocol=SPEC.version, agent="t", timestamp=NOW, nonce="0" * 32)


def test_prune_forgets_only_unverified_unadvertised_peers() -> None:
    book = PeerBook()
    book.on_handshake("verified", _info("verified"), NOW)
    book.on_handshake_failed("refused", "bad signature")
    key = NodeKey.generate()
    book.on_handshake(key.peer_id, _info(key.peer_id), NOW)
    book.on_advert(key.peer_id, build_advert(key, SPEC, now=NOW, seq=1), NOW)
    book.on_disconnected(key.peer_id)  # gone, but its advert is still valid
    book.prune(NOW + 1)
    assert book.get("refused") is None
    assert book.get("verified") is not None
    assert book.get(key.peer_id) is not None
    book.prune(NOW + SPEC.adverts.ttl_s + 1)  # the advert expired: nothing keeps it
    assert book.get(key.peer_id) is None
    assert book.get("verified") is not None
