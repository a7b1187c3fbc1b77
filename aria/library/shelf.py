"""The library's records beside the store's files: manifests, and which files are published.

``models/<id>/library.json`` holds this node's signed manifest of the installed file and
whether the operator publishes it::

    {"format": 1, "published": true, "manifest": {<signed envelope, kind "manifest">}}

A manifest is built once, in one streaming pass over the file (:class:`ChunkHasher`),
when the file is first published; a file fetched from peers gets its manifest from the
chunk list it was fetched with, re-signed by this node (the list is the same on every
node). A record whose manifest no longer matches the installed file (re-downloaded,
another node key) is rebuilt on the next publish. Removing the model removes its record.

Blocking file I/O: the node calls these from a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from aria.catalog import Catalog, Denylist
from aria.errors import IntegrityError
from aria.library.gate import GateRefusal, raise_refusal, serve_refusal
from aria.library.manifest import (
    ChunkHasher,
    LibraryManifest,
    ManifestError,
    build_manifest,
    open_manifest,
    seal_manifest,
)
from aria.library.views import LibraryEntry
from aria.p2p.keys import NodeKey
from aria.p2p.records import SignedEnvelope
from aria.p2p.spec import LibrarySpec
from aria.store import InstalledModel, ModelStore
from aria.store.files import atomic_write_text, storage_errors

__all__ = ["LIBRARY_FILE", "Shared", "Shelf"]

log = logging.getLogger(__name__)

LIBRARY_FILE = "library.json"
_READ = 1 << 20


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    published: bool
    manifest: SignedEnvelope


@dataclass(frozen=True)
class Shared:
    """A published file this node may serve now, with its signed manifest."""

    model: InstalledModel
    envelope: SignedEnvelope
    manifest: LibraryManifest


class Shelf:
    """The library records of one store, signed with this node's key."""

    def __init__(
        self,
        store: ModelStore,
        key: NodeKey,
        spec: LibrarySpec,
        catalog: Catalog,
        denylist: Denylist,
        clock: Callable[[], float],
    ) -> None:
        self._store, self._key, self._spec = store, key, spec
        self._catalog, self._denylist, self._clock = catalog, denylist, clock

    # -- the operator's choices ------------------------------------------------------------

    def publish(self, model_id: str) -> Shared:
        """Publish an installed model (its manifest built now if needed).

        Raises:
            ModelNotInstalled, DeniedFile, IntegrityError, StoreError: from the store.
            LicenceRejected: its licence may not be shared (yellow, red).
            IntegrityError: a catalog id whose file is not the catalog's pinned one.
        """
        model = self._store.get(model_id)
        raise_refusal(self.refusal(model))
        current = self._read(model)
        envelope = current.manifest if current is not None else None
        manifest = self._valid(model, envelope)
        if envelope is None or manifest is None:
            manifest = self._build(model)
            envelope = seal_manifest(manifest, self._key)
        self._write(model, _Record(published=True, manifest=envelope))
        chunks = len(manifest.chunks)
        log.info("published %s (%s…, %d chunks)", model.model_id, model.sha256[:12], chunks)
        return Shared(model, envelope, manifest)

    def unpublish(self, model_id: str) -> bool:
        """Stop publishing ``model_id``; False when it was not published.

        Raises:
            ModelNotInstalled, StoreError: from the store.
        """
        model = self._store.get(model_id)
        record = self._read(model)
        if record is None or not record.published:
            return False
        self._write(model, _Record(published=False, manifest=record.manifest))
        log.info("unpublished %s", model.model_id)
        return True

    def record_fetched(self, model: InstalledModel, fetched: LibraryManifest) -> Shared:
        """A file this node fetched from peers: published, under its own signature."""
        manifest = fetched.model_copy(
            update={
                "peer_id": self._key.peer_id,
                "model_id": model.model_id,
                "file_name": model.path.name,
                "issued_at": self._clock(),
            }
        )
        envelope = seal_manifest(manifest, self._key)
        self._write(model, _Record(published=True, manifest=envelope))
        return Shared(model, envelope, manifest)

    # -- what is shared ---------------------------------------------------------------------

    def shared(self) -> list[Shared]:
        """Published files that may leave the machine now (licence, denylist, pin checked
        again: a catalog or denylist update applies at once)."""
        out = []
        for model in self._store.installed():
            record = self._read(model)
            if record is None or not record.published or self.refusal(model) is not None:
                continue
            manifest = self._valid(model, record.manifest)
            if manifest is None:
                log.warning("the manifest of %s is stale; publish it again", model.model_id)
                continue
            out.append(Shared(model, record.manifest, manifest))
        return out

    def entries(self) -> list[LibraryEntry]:
        """Every installed model with its library state (for ``aria library list``)."""
        out = []
        for model in self._store.installed():
            record = self._read(model)
            refusal = self.refusal(model)
            manifest = self._valid(model, record.manifest) if record is not None else None
            out.append(
                LibraryEntry(
                    model_id=model.model_id,
                    sha256=model.sha256,
                    size_bytes=model.size_bytes,
                    licence=str(model.entry.licence),
                    published=record is not None and record.published and manifest is not None,
                    shareable=refusal is None,
                    refusal=None if refusal is None else refusal.message,
                    chunks=None if manifest is None else len(manifest.chunks),
                )
            )
        return out

    def refusal(self, model: InstalledModel) -> GateRefusal | None:
        return serve_refusal(
            model_id=model.model_id,
            sha256=model.sha256,
            licence=str(model.manifest.licence),
            catalog=self._catalog,
            denylist=self._denylist,
        )

    # -- records ----------------------------------------------------------------------------

    def _valid(
        self, model: InstalledModel, envelope: SignedEnvelope | None
    ) -> LibraryManifest | None:
        """``envelope``'s manifest if it is ours and describes the installed file."""
        if envelope is None:
            return None
        try:
            manifest = open_manifest(envelope, self._spec)
        except ManifestError:
            return None
        fits = (
            manifest.peer_id == self._key.peer_id
            and manifest.sha256 == model.sha256
            and manifest.size == model.size_bytes
            and manifest.model_id == model.model_id
        )
        return manifest if fits else None

    def _build(self, model: InstalledModel) -> LibraryManifest:
        """Hash the installed file once: whole file and every chunk.

        Raises:
            IntegrityError: the file changed since it was verified.
        """
        hasher = ChunkHasher(self._spec.chunk_size)
        with storage_errors(model.path), model.path.open("rb") as stream:
            while data := stream.read(_READ):
                hasher.update(data)
        digest = hasher.finish()
        if digest.sha256 != model.sha256 or digest.size != model.size_bytes:
            raise IntegrityError(
                f"{model.path} changed since it was verified; run `aria model verify "
                f"{model.model_id}`"
            )
        return build_manifest(
            digest,
            peer_id=self._key.peer_id,
            model_id=model.model_id,
            file_name=model.path.name,
            licence=str(model.entry.licence),
            now=self._clock(),
        )

    def _read(self, model: InstalledModel) -> _Record | None:
        path = _record_path(model)
        try:
            return _Record.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("ignoring the unreadable library record %s: %s", path, exc)
            return None

    def _write(self, model: InstalledModel, record: _Record) -> None:
        """Raises: StoreError, InsufficientDiskSpace."""
        atomic_write_text(_record_path(model), record.model_dump_json() + "\n")


def _record_path(model: InstalledModel) -> Path:
    return model.path.parent / LIBRARY_FILE
