"""A file being fetched from peers: its ``.part``, its note and its log of good chunks.

Beside the store's ``<file>.part`` (never loaded, never listed) a fetch keeps:

* ``<file>.part.json``, the note saying which file the part belongs to (sha256, size,
  chunk size and chunk-list root). A part whose note names anything else — an older file,
  another chunk list, or a hub download's prefix of another file — is discarded;
* ``<file>.part.chunks``, an append-only log of the indices of chunks that were verified
  and written (4 bytes each). A chunk's bytes are written at its offset first, its index
  logged after: a process killed in between fetches that chunk again, and a torn last
  record is ignored. Resume reads the log: verified chunks are never fetched twice.

A partial hub download of the same file (the store's note holds only sha256 and size) is
adopted: each whole chunk of its prefix that matches its hash counts as fetched.

All methods block (disk I/O): the fetcher calls them from a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from aria.library.bitmap import Bitmap
from aria.library.manifest import LibraryManifest
from aria.store.files import atomic_write_text, ensure_free_space, storage_errors
from aria.store.transfer import discard_part

__all__ = ["PartFile"]

_INDEX = struct.Struct(">I")
_READ = 1 << 20


class PartFile:
    """The part of one file fetched in chunks, and which chunks of it are good."""

    def __init__(self, path: Path, manifest: LibraryManifest, verified: Bitmap) -> None:
        self.path = path
        self.manifest = manifest
        self.verified = verified
        self._fd = os.open(path, os.O_RDWR)
        self._log = os.open(_log(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    @classmethod
    def open(cls, path: Path, manifest: LibraryManifest) -> PartFile:
        """Resume the part at ``path`` for ``manifest``'s file, or start it afresh.

        Raises:
            InsufficientDiskSpace: the disk cannot hold the rest of the file.
            StoreError: the part cannot be read or written.
        """
        with storage_errors(path):
            verified = _resume(path, manifest)
            held = sum(manifest.span(i)[1] for i in verified)
            ensure_free_space(path.parent, manifest.size - held, subject=manifest.model_id)
            note = {
                "sha256": manifest.sha256,
                "size": manifest.size,
                "chunk_size": manifest.chunk_size,
                "chunks_root": manifest.chunks_root,
            }
            atomic_write_text(_note(path), json.dumps(note))
            with path.open("ab") as handle:
                handle.truncate(manifest.size)
            log = _log(path)
            log.write_bytes(b"".join(_INDEX.pack(i) for i in verified))
            return cls(path, manifest, verified)

    def write(self, index: int, data: bytes) -> None:
        """Store verified chunk ``index`` and log it.

        Raises:
            StoreError, InsufficientDiskSpace: the disk refused the write.
        """
        offset, length = self.manifest.span(index)
        if len(data) != length:
            raise ValueError(f"chunk {index} is {length} bytes, not {len(data)}")
        with storage_errors(self.path):
            os.pwrite(self._fd, data, offset)
            os.write(self._log, _INDEX.pack(index))
        self.verified.add(index)

    def read(self, index: int) -> bytes:
        """A verified chunk's bytes (a node still fetching serves what it holds)."""
        if index not in self.verified:
            raise KeyError(f"chunk {index} is not held yet")
        offset, length = self.manifest.span(index)
        with storage_errors(self.path):
            return os.pread(self._fd, length, offset)

    def whole_sha256(self) -> str:
        hasher = hashlib.sha256()
        with storage_errors(self.path):
            offset = 0
            while data := os.pread(self._fd, _READ, offset):
                hasher.update(data)
                offset += len(data)
        return hasher.hexdigest()

    def recheck(self) -> list[int]:
        """Re-hash every chunk; forget (and return) the ones that do not match (bytes lost
        to a crash after their index was logged)."""
        bad = [i for i in range(len(self.manifest.chunks)) if not self._matches(i)]
        for index in bad:
            self.verified.discard(index)
        with storage_errors(self.path):
            _log(self.path).write_bytes(b"".join(_INDEX.pack(i) for i in self.verified))
        return bad

    def _matches(self, index: int) -> bool:
        offset, length = self.manifest.span(index)
        data = os.pread(self._fd, length, offset)
        return hashlib.sha256(data).hexdigest() == self.manifest.chunks[index]

    def close(self) -> None:
        for fd in (self._fd, self._log):
            with contextlib.suppress(OSError):
                os.close(fd)

    def discard(self) -> None:
        self.close()
        discard_part(self.path)


def _resume(path: Path, manifest: LibraryManifest) -> Bitmap:
    """The chunks of an existing part that count (an empty bitmap when none do)."""
    count = len(manifest.chunks)
    recorded = _read_note(path)
    if recorded is not None and path.exists():
        if recorded == {
            "sha256": manifest.sha256,
            "size": manifest.size,
            "chunk_size": manifest.chunk_size,
            "chunks_root": manifest.chunks_root,
        }:
            return _read_log(path, count)
        if recorded == {"sha256": manifest.sha256, "size": manifest.size}:
            return _adopt_prefix(path, manifest)
    discard_part(path)
    return Bitmap(count)


def _read_note(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(_note(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _read_log(path: Path, count: int) -> Bitmap:
    try:
        raw = _log(path).read_bytes()
    except FileNotFoundError:
        return Bitmap(count)
    whole = len(raw) - len(raw) % _INDEX.size  # a torn last record is ignored
    indices = (_INDEX.unpack_from(raw, at)[0] for at in range(0, whole, _INDEX.size))
    return Bitmap(count, (i for i in indices if i < count))


def _adopt_prefix(path: Path, manifest: LibraryManifest) -> Bitmap:
    """A hub download's prefix of this very file: keep its whole chunks that verify."""
    verified = Bitmap(len(manifest.chunks))
    present = path.stat().st_size
    with path.open("rb") as handle:
        for index, digest in enumerate(manifest.chunks):
            offset, length = manifest.span(index)
            if offset + length > present:
                break
            handle.seek(offset)
            if hashlib.sha256(handle.read(length)).hexdigest() == digest:
                verified.add(index)
    return verified


def _note(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _log(path: Path) -> Path:
    return path.with_name(path.name + ".chunks")
