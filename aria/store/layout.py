"""The store's folders and records, and the one door a file goes through to become visible.

Layout::

    models/<model_id>/<file>.gguf        the verified file
    models/<model_id>/manifest.json      written last: its presence means "installed"
    models/<model_id>/<file>.gguf.part   a partial download or copy (never loaded)
    models/.locks/<model_id>.lock        inter-process lock (aria.store.lock)
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from aria.catalog.denylist import Denylist
from aria.catalog.entries import CatalogEntry
from aria.catalog.licences import classify
from aria.errors import DeniedFile, IntegrityError, ModelNotFound, StoreError
from aria.store.files import atomic_write_text, fsync_file, storage_errors
from aria.store.lock import model_lock
from aria.store.manifest import (
    MANIFEST_NAME,
    HashSource,
    Manifest,
    SourceFile,
    manifest_from_json,
    manifest_to_json,
)
from aria.store.transfer import discard_part

__all__ = ["StoreLayout"]

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # always fullmatch: "$" allows "\n"


class StoreLayout:
    """Paths and manifest records under one ``models/`` folder."""

    def __init__(self, root: Path, *, lock_timeout_s: float) -> None:
        self.root = root
        self._lock_timeout_s = lock_timeout_s

    def dir(self, model_id: str) -> Path:
        """The folder of ``model_id``.

        Raises:
            ModelNotFound: the id could escape the store (it is not a valid model id).
        """
        if not _MODEL_ID.fullmatch(model_id):
            raise ModelNotFound(
                f"{model_id!r} is not a valid model id (letters, digits, '.', '_' and '-')",
                param="model",
            )
        return self.root / model_id

    def part_for(self, model_id: str, file_name: str) -> tuple[Path, Path]:
        """(final path, partial path) for a file of ``model_id``."""
        final = self.dir(model_id) / Path(file_name).name
        return final, final.with_name(final.name + ".part")

    def model_dirs(self) -> list[Path]:
        """Every model folder (installed, partial or damaged), sorted by name."""
        if not self.root.is_dir():
            return []
        return sorted(d for d in self.root.iterdir() if d.is_dir() and _MODEL_ID.fullmatch(d.name))

    def has_manifest(self, model_id: str) -> bool:
        return (self.dir(model_id) / MANIFEST_NAME).exists()

    def read_manifest(self, model_id: str) -> Manifest | None:
        """The manifest of ``model_id``, or None when there is none.

        Raises:
            StoreError: the manifest exists but cannot be read or parsed.
        """
        path = self.dir(model_id) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        return manifest_from_json(text, where=str(path))

    def write_manifest(self, manifest: Manifest) -> None:
        atomic_write_text(self.dir(manifest.model_id) / MANIFEST_NAME, manifest_to_json(manifest))

    def clear_manifest(self, model_id: str) -> None:
        """Forget a model whose file is gone or damaged, so "manifest exists" stays true."""
        (self.dir(model_id) / MANIFEST_NAME).unlink(missing_ok=True)

    def delete(self, model_id: str) -> None:
        directory = self.dir(model_id)
        with storage_errors(directory):
            shutil.rmtree(directory)

    def lock(self, model_id: str, action: str) -> AbstractContextManager[None]:
        """Hold ``model_id``'s inter-process lock (StoreBusy after the timeout)."""
        self.dir(model_id)  # validates the id before it names a lock file
        return model_lock(
            self.root / ".locks", model_id, action=action, timeout_s=self._lock_timeout_s
        )

    def publish(
        self,
        entry: CatalogEntry,
        part: Path,
        final: Path,
        *,
        actual: str,
        expected: str,
        hash_source: HashSource,
        denylist: Denylist,
        now: datetime,
        imported: bool = False,
        accepted: bool = False,
        sources: tuple[SourceFile, ...] = (),
    ) -> Manifest:
        """Check ``part`` (sha256, size, denylist), rename it to ``final``, write the manifest.

        A part that fails a check is deleted: it is never used.

        Raises:
            IntegrityError: the hash or size is not the expected one.
            DeniedFile: the hash is on the denylist.
        """
        size = part.stat().st_size
        problem = None
        if actual != expected:
            problem = f"has sha256 {actual}, expected {expected} ({hash_source.value})"
        elif entry.size_bytes is not None and size != entry.size_bytes:
            problem = f"is {size:,} bytes, the catalog says {entry.size_bytes:,}"
        if problem is not None:
            discard_part(part)
            raise IntegrityError(
                f"the received file of {entry.id} {problem}; it was deleted and will not be used"
            )
        try:
            denylist.check(actual, subject=entry.id)
        except DeniedFile:
            discard_part(part)
            raise
        fsync_file(part)
        with storage_errors(final):
            os.replace(part, final)
        discard_part(part)  # removes the resume note
        manifest = Manifest(
            model_id=entry.id,
            file_name=final.name,
            size_bytes=size,
            sha256=actual,
            hash_source=hash_source,
            licence=entry.licence,
            licence_class=classify(entry.licence),
            source=entry.source,
            installed_at=now,
            verified_at=now,
            imported=imported,
            accepted_licence=accepted,
            entry=entry,
            sources=sources,
        )
        self.write_manifest(manifest)
        return manifest
