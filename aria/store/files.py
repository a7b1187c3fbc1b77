"""File primitives the store is built on: hashing, free-space checks, atomic writes."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from aria.errors import InsufficientDiskSpace, StoreError
from aria.files import write_atomic

__all__ = [
    "CHUNK_BYTES",
    "atomic_write_text",
    "copy_hashing",
    "ensure_free_space",
    "fsync_file",
    "hash_into",
    "sha256_file",
    "storage_errors",
]

CHUNK_BYTES = 1 << 20

# Keep this much free beyond the file itself, so a download never fills the disk to the brim.
_HEADROOM_BYTES = 64 << 20


def hash_into(hasher: hashlib._Hash, stream: BinaryIO) -> int:
    """Feed ``stream`` to ``hasher`` until EOF; return the number of bytes read."""
    total = 0
    while chunk := stream.read(CHUNK_BYTES):
        hasher.update(chunk)
        total += len(chunk)
    return total


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (models are gigabytes)."""
    hasher = hashlib.sha256()
    with storage_errors(path), path.open("rb") as stream:
        hash_into(hasher, stream)
    return hasher.hexdigest()


def ensure_free_space(directory: Path, needed_bytes: int, *, subject: str) -> None:
    """Refuse to start writing ``needed_bytes`` into ``directory`` when the disk cannot hold them.

    Raises:
        InsufficientDiskSpace: free space is below what is needed plus a small headroom.
    """
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if needed_bytes + _HEADROOM_BYTES > free:
        raise InsufficientDiskSpace(
            f"{subject} needs {_mib(needed_bytes)} more on {directory} but only {_mib(free)} "
            f"is free (ARIA keeps {_mib(_HEADROOM_BYTES)} spare); free some space and retry"
        )


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically, turning OS errors into store errors."""
    with storage_errors(path):
        write_atomic(path, text, mode=0o644)


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Turn OS errors while touching ``path`` into store errors a user can act on."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientDiskSpace(f"the disk holding {path} is full") from exc
        reason = exc.strerror or str(exc)
        raise StoreError(f"cannot use {path}: {reason}") from exc


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def copy_hashing(source: Path, dest: Path) -> str:
    """Copy ``source`` to ``dest`` and return the sha256 of the bytes written."""
    hasher = hashlib.sha256()
    with storage_errors(dest), source.open("rb") as stream, dest.open("wb") as sink:
        while chunk := stream.read(CHUNK_BYTES):
            sink.write(chunk)
            hasher.update(chunk)
    return hasher.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush ``path`` to stable storage before it is published by a rename."""
    with storage_errors(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
