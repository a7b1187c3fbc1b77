"""Install a catalog model that ARIA converts itself: fetch the published checkpoint's
files, verify each one, convert them into one GGUF, and hand it to the store's publish.

Each source file is checked against, in order of preference, the catalog's sha256 pin,
the hub's LFS sha256 (large files), or the hub's git blob id (small JSON files, which are
not in LFS). The files are staged under ``cache/checkpoints/<id>/`` so an interrupted
download resumes and a failed conversion does not download again; they are deleted once
the converted model is installed (the manifest keeps their hashes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from aria.catalog.entries import CatalogEntry, CheckpointFile, ConvertedSource, HuggingFaceSource
from aria.errors import IntegrityError
from aria.store import hub
from aria.store.files import CHUNK_BYTES, ensure_free_space, sha256_file, storage_errors
from aria.store.manifest import HashSource, SourceFile
from aria.store.transfer import ProgressCallback, RetryPolicy, discard_part, fetch

__all__ = ["StagedCheckpoint", "clear_staging", "fetch_checkpoint", "git_blob_sha1"]


@dataclass(frozen=True)
class StagedCheckpoint:
    folder: Path
    files: tuple[SourceFile, ...]

    @property
    def size_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)


@dataclass(frozen=True)
class _Planned:
    pin: CheckpointFile
    remote: hub.RemoteFile
    size: int


def fetch_checkpoint(
    entry: CatalogEntry,
    source: ConvertedSource,
    staging: Path,
    *,
    config: hub.HubConfig,
    retry: RetryPolicy,
    progress: ProgressCallback | None = None,
) -> StagedCheckpoint:
    """Download (or resume) every file of ``source`` into ``staging``, each verified.

    Raises:
        DownloadError, IntegrityError, InsufficientDiskSpace.
    """
    planned = [_plan(entry, source, pin, config) for pin in source.files]
    missing = sum(p.size for p in planned if not (staging / p.pin.name).is_file())
    ensure_free_space(staging, missing, subject=f"downloading the checkpoint of {entry.id}")
    total = sum(p.size for p in planned)
    done = 0
    records = []
    for item in planned:
        offset = done

        def forward(present: int, _size: int, offset: int = offset) -> None:
            if progress:
                progress(offset + present, total)

        records.append(_fetch_one(entry, item, staging, config, retry, forward))
        done += item.size
    return StagedCheckpoint(staging, tuple(records))


def git_blob_sha1(path: Path) -> str:
    """The id git (and the hub's ETag for non-LFS files) gives the file's content."""
    hasher = hashlib.sha1(usedforsecurity=False)
    hasher.update(f"blob {path.stat().st_size}\0".encode())
    with storage_errors(path), path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def _plan(
    entry: CatalogEntry, source: ConvertedSource, pin: CheckpointFile, config: hub.HubConfig
) -> _Planned:
    where = HuggingFaceSource(repo=source.repo, file=pin.name, revision=source.revision)
    remote = hub.resolve(where, config)
    subject = f"{entry.id}: {pin.name}"
    if pin.sha256 and remote.sha256 and pin.sha256 != remote.sha256:
        raise IntegrityError(
            f"{config.endpoint} serves a different {pin.name} for {entry.id} (sha256 "
            f"{remote.sha256}) than the catalog pins ({pin.sha256}); nothing was downloaded"
        )
    if not (pin.sha256 or remote.sha256 or remote.git_sha1):
        raise IntegrityError(f"no hash is known for {subject}; ARIA installs only what it verifies")
    if pin.size and remote.size and pin.size != remote.size:
        raise IntegrityError(
            f"{config.endpoint} serves {remote.size:,} bytes for {subject}, the catalog "
            f"says {pin.size:,}; nothing was downloaded"
        )
    size = pin.size or remote.size
    if size is None:
        raise IntegrityError(f"{config.endpoint} does not say how large {subject} is")
    return _Planned(pin, remote, size)


def _fetch_one(
    entry: CatalogEntry,
    item: _Planned,
    staging: Path,
    config: hub.HubConfig,
    retry: RetryPolicy,
    progress: ProgressCallback,
) -> SourceFile:
    final = staging / item.pin.name
    expected = item.pin.sha256 or item.remote.sha256
    verified_by = HashSource.CATALOG if item.pin.sha256 else HashSource.HUB_ETAG
    if final.is_file():  # staged by an earlier run: trust nothing, re-check it
        actual = sha256_file(final)
        if _matches(final, actual, expected, item.remote.git_sha1):
            progress(item.size, item.size)
            return SourceFile(
                name=final.name, sha256=actual, size_bytes=item.size, verified_by=verified_by
            )
        final.unlink()
    part = final.with_name(final.name + ".part")
    actual = fetch(
        item.remote.url,
        part,
        size=item.size,
        expected_sha256=expected or f"git:{item.remote.git_sha1}",
        headers=config.headers(),
        subject=f"{entry.id} ({item.pin.name})",
        policy=retry,
        progress=progress,
    )
    if not _matches(part, actual, expected, item.remote.git_sha1):
        discard_part(part)
        wanted = expected or f"git blob {item.remote.git_sha1}"
        raise IntegrityError(
            f"the received {item.pin.name} of {entry.id} does not match {wanted}; "
            "it was deleted and will not be used"
        )
    with storage_errors(final):
        os.replace(part, final)
    discard_part(part)
    return SourceFile(name=final.name, sha256=actual, size_bytes=item.size, verified_by=verified_by)


def _matches(path: Path, actual: str, expected: str | None, git_sha1: str | None) -> bool:
    if expected is not None:
        return actual == expected
    return git_sha1 is not None and git_blob_sha1(path) == git_sha1


def clear_staging(staging: Path) -> None:
    """Forget a staged checkpoint (after its converted model is installed)."""
    shutil.rmtree(staging, ignore_errors=True)
