"""Manifests: one streaming pass, deterministic chunk hashes, signatures that bind the provider."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aria.library.manifest import (
    ChunkHasher,
    FileDigest,
    ManifestError,
    build_manifest,
    chunk_count,
    open_manifest,
    seal_manifest,
)
from aria.library.wire import Offer, encode_message
from aria.p2p.keys import NodeKey
from aria.p2p.records import seal
from aria.p2p.spec import load_spec
from tests.library.support import CHUNK, SPEC, blob, manifest_of, sha


@settings(max_examples=50)
@given(st.integers(min_value=1, max_value=5 * CHUNK + 7), st.lists(st.integers(1, 3000)))
def test_one_pass_gives_the_whole_hash_and_every_chunk_hash(size: int, cuts: list[int]) -> None:
    data = blob(size, seed=size)
    hasher = ChunkHasher(CHUNK)
    at = 0
    for cut in cuts:  # however the bytes arrive
        hasher.update(data[at : at + cut])
        at += cut
    hasher.update(data[at:])
    digest = hasher.finish()
    assert digest.size == size and digest.sha256 == sha(data)
    expected = [sha(data[i : i + CHUNK]) for i in range(0, size, CHUNK)]
    assert list(digest.chunks) == expected and len(expected) == chunk_count(size, CHUNK)


def test_two_publishers_of_one_file_agree_on_its_chunk_list() -> None:
    data = blob(3 * CHUNK + 100)
    first, _ = manifest_of(data, NodeKey.generate())
    second, _ = manifest_of(data, NodeKey.generate(), now=1_900_000_000.0)
    assert first.chunks == second.chunks and first.chunks_root == second.chunks_root
    other, _ = manifest_of(blob(3 * CHUNK + 100, seed=1), NodeKey.generate())
    assert other.chunks_root != first.chunks_root
    assert first.span(3) == (3 * CHUNK, 100)


def test_a_signed_manifest_opens_and_a_tampered_one_does_not() -> None:
    key = NodeKey.generate()
    manifest, envelope = manifest_of(blob(2 * CHUNK), key)
    assert open_manifest(envelope, SPEC) == manifest
    tampered = envelope.model_copy(
        update={"payload": envelope.payload.replace("tiny-lib", "other")}
    )
    with pytest.raises(ManifestError) as refused:
        open_manifest(tampered, SPEC)
    assert refused.value.reason == "bad_signature"


def test_a_manifest_naming_another_publisher_is_refused() -> None:
    publisher, impostor = NodeKey.generate(), NodeKey.generate()
    manifest, _ = manifest_of(blob(CHUNK), publisher)
    with pytest.raises(ValueError):
        seal_manifest(manifest, impostor)
    forged = seal("manifest", manifest, impostor)  # signed by the impostor, naming the publisher
    with pytest.raises(ManifestError) as refused:
        open_manifest(forged, SPEC)
    assert refused.value.reason == "peer_mismatch"


def test_an_advert_envelope_is_not_a_manifest() -> None:
    key = NodeKey.generate()
    manifest, _ = manifest_of(blob(CHUNK), key)
    with pytest.raises(ManifestError) as refused:
        open_manifest(seal("advert", manifest, key), SPEC)
    assert refused.value.reason == "wrong_kind"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"chunk_size": CHUNK * 2}, "the protocol cuts"),
        ({"size": 5 * CHUNK}, "chunk hashes for a file of 5 chunks"),
        ({"file_name": "../etc/passwd"}, "plain file name"),
        ({"chunks": ("AB" * 32, "00" * 32)}, "64 lower-case hex"),
    ],
)
def test_a_manifest_the_protocol_cannot_describe_is_refused(
    change: dict[str, object], detail: str
) -> None:
    key = NodeKey.generate()
    manifest, _ = manifest_of(blob(2 * CHUNK), key)
    broken = manifest.model_copy(update=change)
    with pytest.raises(ManifestError, match=detail) as refused:
        open_manifest(seal_manifest(broken, key), SPEC)
    assert refused.value.reason == "bad_structure"


def test_too_many_chunks_are_refused() -> None:
    key = NodeKey.generate()
    spec = dataclasses.replace(SPEC, max_chunks=2)
    _, envelope = manifest_of(blob(3 * CHUNK), key)
    with pytest.raises(ManifestError, match="exceed"):
        open_manifest(envelope, spec)


def test_the_largest_file_the_protocol_allows_fits_in_one_offer() -> None:
    spec = load_spec().library
    count = spec.max_chunks
    digest = FileDigest(
        count * spec.chunk_size, "a" * 64, spec.chunk_size, tuple(f"{i:064x}" for i in range(count))
    )
    key = NodeKey.generate()
    manifest = build_manifest(
        digest, peer_id=str(key.peer_id), model_id="big", file_name="big.gguf", licence="mit", now=0
    )
    envelope = seal_manifest(manifest, key)
    assert len(encode_message(Offer(manifest=envelope), spec.message_frame)) <= spec.message_frame
    assert open_manifest(envelope, spec).size == count * spec.chunk_size


def test_an_empty_chunk_list_is_never_valid() -> None:
    assert hashlib.sha256(b"").hexdigest()  # the empty file is on the denylist besides
    hasher = ChunkHasher(CHUNK)
    assert len(hasher.finish().chunks) == 1
