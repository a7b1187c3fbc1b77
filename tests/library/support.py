"""Small files, manifests and a protocol spec with tiny chunks for the library's unit tests."""

from __future__ import annotations

import dataclasses
import hashlib
import random

from aria.library.manifest import (
    ChunkHasher,
    LibraryManifest,
    build_manifest,
    seal_manifest,
)
from aria.p2p.keys import NodeKey
from aria.p2p.records import SignedEnvelope
from aria.p2p.spec import LibrarySpec, load_spec

CHUNK = 1024
SPEC: LibrarySpec = dataclasses.replace(
    load_spec().library,
    chunk_size=CHUNK,
    piece_size=300,
    max_requests=4,
    offer_timeout_s=5.0,
    stall_timeout_s=10.0,
)


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def manifest_of(
    data: bytes,
    key: NodeKey,
    *,
    model_id: str = "tiny-lib",
    licence: str = "Apache-2.0",
    spec: LibrarySpec = SPEC,
    now: float = 1_800_000_000.0,
) -> tuple[LibraryManifest, SignedEnvelope]:
    hasher = ChunkHasher(spec.chunk_size)
    hasher.update(data)
    manifest = build_manifest(
        hasher.finish(),
        peer_id=key.peer_id,
        model_id=model_id,
        file_name="tiny.gguf",
        licence=licence,
        now=now,
    )
    return manifest, seal_manifest(manifest, key)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
