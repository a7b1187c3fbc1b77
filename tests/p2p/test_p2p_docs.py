"""docs/protocol-spec.md quotes the values the code actually uses (aria/p2p/protocol.toml)."""

from __future__ import annotations

from pathlib import Path

from aria.p2p.spec import load_spec

SPEC_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol-spec.md"


def test_protocol_spec_quotes_every_constant() -> None:
    text = SPEC_DOC.read_text(encoding="utf-8")
    spec = load_spec()
    quoted = [
        spec.version,
        spec.handshake_id,
        spec.dht_id,
        spec.mdns_service,
        spec.rendezvous_key,
        spec.model_key_prefix,
        spec.handshake_frame,
        spec.advert_record,
        spec.control_frame,
        spec.handshake_frames,
        spec.handshake_timeout_s,
        spec.max_clock_skew_s,
        spec.replay_cache_size,
        spec.adverts.ttl_s,
        spec.adverts.refresh_s,
        spec.adverts.max_ttl_s,
        spec.adverts.tombstone_ttl_s,
        spec.guard.rate_per_s,
        spec.guard.burst,
        spec.guard.initial,
        spec.guard.ban_below,
        spec.guard.ban_s,
        spec.guard.recover_per_s,
        spec.library.protocol,
        spec.library.chunk_size,
        spec.library.max_chunks,
        spec.library.message_frame,
        spec.library.piece_size,
        spec.library.max_requests,
        spec.library.offer_timeout_s,
        spec.library.stall_timeout_s,
        spec.library.refresh_s,
    ]
    missing = [value for value in quoted if str(value) not in text]
    assert missing == []
    for kind, penalty in spec.guard.penalties.items():
        assert f"`{kind}` {penalty}" in text
