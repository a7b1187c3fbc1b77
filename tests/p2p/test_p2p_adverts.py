"""Signed adverts: build, encode, verify, select, withdraw (pure)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from aria.p2p.adverts import (
    AdvertError,
    ModelOffer,
    advert_key,
    build_advert,
    decode_advert,
    encode_advert,
    model_provider_key,
    rendezvous_provider_key,
    select_advert,
    withdraw,
)
from aria.p2p.keys import NodeKey
from aria.p2p.records import seal
from aria.p2p.spec import load_spec

SPEC = load_spec()
NOW = 1_800_000_000.0
OFFER = ModelOffer(id="smollm2-135m", sha256="ab" * 32, licence_class="green")


def advert(key: NodeKey, *, now: float = NOW, seq: int = 1, spec=SPEC):  # type: ignore[no-untyped-def]
    return build_advert(
        key,
        spec,
        now=now,
        seq=seq,
        addrs=("/ip4/127.0.0.1/tcp/1",),
        models=(OFFER,),
        profile="balanced",
    )


def test_round_trip_under_its_key() -> None:
    key = NodeKey.generate()
    value = encode_advert(advert(key), key, SPEC)
    got = decode_advert(value, SPEC, now=NOW + 1, key=advert_key(key.peer_id, SPEC))
    assert got.peer_id == key.peer_id and got.serves("smollm2-135m") == OFFER
    assert got.serves("other") is None
    assert len(advert_key(key.peer_id, SPEC).encode()) <= 50  # py-libp2p's FIND_NODE limit


def test_expiry_future_and_lifetime_rules() -> None:
    key = NodeKey.generate()
    value = encode_advert(advert(key), key, SPEC)
    with pytest.raises(AdvertError, match="expired"):
        decode_advert(value, SPEC, now=NOW + SPEC.adverts.ttl_s + 1)
    with pytest.raises(AdvertError, match="from_future"):
        decode_advert(value, SPEC, now=NOW - SPEC.max_clock_skew_s - 10)
    long_lived = dataclasses.replace(
        SPEC, adverts=dataclasses.replace(SPEC.adverts, ttl_s=SPEC.adverts.max_ttl_s * 2)
    )
    with pytest.raises(AdvertError, match="ttl_too_long"):
        decode_advert(encode_advert(advert(key, spec=long_lived), key, SPEC), SPEC, now=NOW)


def test_record_under_another_peers_key_is_refused() -> None:
    key, other = NodeKey.generate(), NodeKey.generate()
    value = encode_advert(advert(key), key, SPEC)
    with pytest.raises(AdvertError, match="wrong_key"):
        decode_advert(value, SPEC, now=NOW, key=advert_key(other.peer_id, SPEC))


def test_tampered_payload_and_foreign_signer_are_refused() -> None:
    key, mallory = NodeKey.generate(), NodeKey.generate()
    envelope = json.loads(encode_advert(advert(key), key, SPEC))
    envelope["payload"] = envelope["payload"].replace('"balanced"', '"full"')
    with pytest.raises(AdvertError, match="bad_signature"):
        decode_advert(json.dumps(envelope).encode(), SPEC, now=NOW)
    # mallory signs an advert naming key's peer id
    forged = seal("advert", advert(key), mallory).model_dump_json().encode()
    with pytest.raises(AdvertError, match="peer_mismatch"):
        decode_advert(forged, SPEC, now=NOW)
    # a handshake record is not an advert
    hello_kind = seal("hello", advert(key), key).model_dump_json().encode()
    with pytest.raises(AdvertError, match="wrong_kind"):
        decode_advert(hello_kind, SPEC, now=NOW)


def test_incompatible_version_and_oversize() -> None:
    key = NodeKey.generate()
    other_major = dataclasses.replace(SPEC, version="7.0")
    with pytest.raises(AdvertError, match="incompatible_version"):
        decode_advert(encode_advert(advert(key, spec=other_major), key, SPEC), SPEC, now=NOW)
    with pytest.raises(AdvertError, match="oversized"):
        decode_advert(b" " * (SPEC.advert_record + 1), SPEC, now=NOW)
    with pytest.raises(AdvertError, match="malformed"):
        decode_advert(b"{}", SPEC, now=NOW)


def test_select_prefers_highest_valid_seq_and_tombstones_win() -> None:
    key = NodeKey.generate()
    old = encode_advert(advert(key, seq=5), key, SPEC)
    new = encode_advert(advert(key, seq=9), key, SPEC)
    assert select_advert([old, new], SPEC, now=NOW) == 1
    assert select_advert([new, b"garbage", old], SPEC, now=NOW) == 0
    tombstone = withdraw(advert(key, seq=9), SPEC, now=NOW + 1, seq=10)
    value = encode_advert(tombstone, key, SPEC)
    assert select_advert([new, value], SPEC, now=NOW + 2) == 1
    got = decode_advert(value, SPEC, now=NOW + 2)
    assert (
        got.withdrawn
        and got.models == ()
        and got.expires_at == NOW + 1 + SPEC.adverts.tombstone_ttl_s
    )


def test_provider_keys_are_sha256_multihashes() -> None:
    a, b = model_provider_key("m1", SPEC), model_provider_key("m2", SPEC)
    assert a[:2] == b"\x12\x20" and len(a) == 34 and a != b
    assert rendezvous_provider_key(SPEC) not in (a, b)
