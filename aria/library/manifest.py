"""The library manifest: what a publisher vouches a model file is, chunk by chunk (pure).

A manifest names one file by the sha256 of its whole content and cuts it into chunks of
the protocol's fixed size (``LibrarySpec.chunk_size``; the last chunk is shorter), each
with its own sha256, so a fetcher can verify every chunk the moment it arrives, from
whichever peer sent it. It also carries the model id, the file name, the licence and the
publisher's peer id, and travels as a signed envelope (kind ``manifest``, as adverts are
signed: :mod:`aria.p2p.records`), so a provider answers for the list it serves.

Deterministic: the chunk hashes depend only on the file's bytes and the fixed chunk size,
so every honest node holding a file produces the same list (:attr:`LibraryManifest.chunks_root`
names it); a fetcher only ever mixes chunks from providers that agree on it.

:class:`ChunkHasher` computes the whole-file hash and every chunk hash in one streaming
pass, for a file read from disk or chunks as they arrive.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aria.p2p.keys import NodeKey
from aria.p2p.records import RecordError, SignedEnvelope, open_envelope, seal
from aria.p2p.spec import LibrarySpec

__all__ = [
    "ChunkHasher",
    "FileDigest",
    "LibraryManifest",
    "ManifestError",
    "build_manifest",
    "chunk_count",
    "chunk_span",
    "open_manifest",
    "seal_manifest",
]

_HEX64 = r"^[0-9a-f]{64}$"
_MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class ManifestError(Exception):
    """A manifest that must not be used; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class LibraryManifest(BaseModel):
    """The signed payload (lenient: later minor versions may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    peer_id: str = Field(max_length=128)  # the publisher; must be the envelope's signer
    model_id: str = Field(pattern=_MODEL_ID, max_length=128)
    file_name: str = Field(min_length=1, max_length=255)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=_HEX64)
    chunk_size: int = Field(gt=0)
    chunks: tuple[str, ...] = Field(min_length=1)
    licence: str = Field(min_length=1, max_length=64)
    issued_at: float

    @property
    def chunks_root(self) -> str:
        """One hash naming the chunk list: equal lists, equal roots."""
        return hashlib.sha256(b"".join(bytes.fromhex(c) for c in self.chunks)).hexdigest()

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk ``index`` in the file."""
        return chunk_span(index, self.size, self.chunk_size)


@dataclass(frozen=True)
class FileDigest:
    """A file's size, whole sha256 and chunk sha256s at one chunk size."""

    size: int
    sha256: str
    chunk_size: int
    chunks: tuple[str, ...]


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, -(-size // chunk_size))


def chunk_span(index: int, size: int, chunk_size: int) -> tuple[int, int]:
    """(offset, length) of chunk ``index`` of a ``size``-byte file."""
    offset = index * chunk_size
    return offset, max(0, min(chunk_size, size - offset))


class ChunkHasher:
    """Feed a file's bytes in order, of any piece size; get every hash in one pass."""

    def __init__(self, chunk_size: int) -> None:
        self._chunk_size = chunk_size
        self._whole = hashlib.sha256()
        self._chunk = hashlib.sha256()
        self._in_chunk = 0
        self._size = 0
        self._chunks: list[str] = []

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self._whole.update(view)
        self._size += len(view)
        while view:
            take = min(len(view), self._chunk_size - self._in_chunk)
            self._chunk.update(view[:take])
            self._in_chunk += take
            view = view[take:]
            if self._in_chunk == self._chunk_size:
                self._close_chunk()

    def _close_chunk(self) -> None:
        self._chunks.append(self._chunk.hexdigest())
        self._chunk = hashlib.sha256()
        self._in_chunk = 0

    def finish(self) -> FileDigest:
        if self._in_chunk or not self._chunks:
            self._close_chunk()
        whole = self._whole.hexdigest()
        return FileDigest(self._size, whole, self._chunk_size, tuple(self._chunks))


def build_manifest(
    digest: FileDigest,
    *,
    peer_id: str,
    model_id: str,
    file_name: str,
    licence: str,
    now: float,
) -> LibraryManifest:
    return LibraryManifest(
        peer_id=peer_id,
        model_id=model_id,
        file_name=file_name,
        size=digest.size,
        sha256=digest.sha256,
        chunk_size=digest.chunk_size,
        chunks=digest.chunks,
        licence=licence,
        issued_at=now,
    )


def seal_manifest(manifest: LibraryManifest, key: NodeKey) -> SignedEnvelope:
    """Sign ``manifest`` as ``key`` (which must be its publisher).

    Raises:
        ValueError: ``manifest.peer_id`` is not ``key``'s peer id.
    """
    if manifest.peer_id != key.peer_id:
        raise ValueError("a node signs only manifests that name it as publisher")
    return seal("manifest", manifest, key)


def open_manifest(envelope: SignedEnvelope, spec: LibrarySpec) -> LibraryManifest:
    """Verify a manifest envelope and its structure.

    Raises:
        ManifestError: bad signature or signer (``bad_signature``, ``peer_mismatch``...,
            as :func:`aria.p2p.records.open_envelope` names them), or a structure the
            protocol does not allow (``bad_structure``).
    """
    try:
        _signer, manifest = open_envelope(envelope, "manifest", LibraryManifest)
    except RecordError as exc:
        raise ManifestError(exc.reason, exc.detail) from None
    problem = structure_fault(manifest, spec)
    if problem is not None:
        raise ManifestError("bad_structure", problem)
    return manifest


def structure_fault(manifest: LibraryManifest, spec: LibrarySpec) -> str | None:
    """Why ``manifest`` cannot describe a file under this protocol, or None."""
    if manifest.chunk_size != spec.chunk_size:
        return f"chunks of {manifest.chunk_size} bytes; the protocol cuts {spec.chunk_size}"
    expected = chunk_count(manifest.size, manifest.chunk_size)
    if expected > spec.max_chunks:
        return f"{expected} chunks exceed the protocol's {spec.max_chunks}"
    if len(manifest.chunks) != expected:
        return f"{len(manifest.chunks)} chunk hashes for a file of {expected} chunks"
    if not all(re.fullmatch(_HEX64, chunk) for chunk in manifest.chunks):
        return "a chunk hash is not 64 lower-case hex digits"
    if not _FILE_NAME.fullmatch(manifest.file_name):
        return "the file name is not a plain file name"
    return None


def parse_manifest_json(text: str | bytes) -> SignedEnvelope:
    """A stored or received envelope.

    Raises:
        ManifestError: not a signed envelope (``malformed``).
    """
    try:
        return SignedEnvelope.model_validate_json(text)
    except ValidationError:
        raise ManifestError("malformed", "not a signed ARIA manifest envelope") from None
