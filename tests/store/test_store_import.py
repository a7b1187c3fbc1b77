"""Importing local GGUF files: licence gate, denylist, catalog matches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aria.catalog.entries import CatalogEntry, LocalSource, Tier
from aria.catalog.licences import LicenceClass
from aria.config import AriaPaths
from aria.errors import (
    DeniedFile,
    LicenceNotAccepted,
    LicenceRejected,
    ModelNotFound,
    StoreError,
)
from aria.store import HashSource, ModelStore
from tests.store.support import catalog_of, denylist_of, hub_entry, sha256

MakeGguf = Callable[..., Path]


def _store(
    aria_paths: AriaPaths, *entries: CatalogEntry, denied: tuple[str, ...] = ()
) -> ModelStore:
    catalog = catalog_of(*entries) if entries else catalog_of(hub_entry("unrelated"))
    return ModelStore(aria_paths, catalog, denylist_of(*denied))


def test_green_import_gets_an_entry_from_its_metadata(
    aria_paths: AriaPaths, make_gguf: MakeGguf
) -> None:
    source = make_gguf("My Model.F32", "apache-2.0")
    model = _store(aria_paths).import_file(source)

    assert model.model_id == "My-Model.F32"
    assert model.path.read_bytes() == source.read_bytes()
    assert model.entry.licence == "Apache-2.0"
    assert model.entry.architecture == "llama" and model.entry.quantization == "F32"
    assert model.entry.context_length == 512 and model.entry.tier is Tier.QUALITY
    assert model.entry.source == LocalSource(path=str(source.resolve()))
    assert model.manifest.imported and not model.manifest.accepted_licence
    assert model.manifest.hash_source is HashSource.IMPORT
    assert source.exists()  # imports copy, never move


def test_yellow_licence_needs_accept_license(aria_paths: AriaPaths, make_gguf: MakeGguf) -> None:
    source = make_gguf("llama-ish", "llama3.1")
    store = _store(aria_paths)
    with pytest.raises(LicenceNotAccepted, match="--accept-license"):
        store.import_file(source)
    assert store.installed() == []

    model = store.import_file(source, accept_license=True)
    assert model.manifest.accepted_licence
    assert model.manifest.licence_class is LicenceClass.YELLOW


@pytest.mark.parametrize("licence", ["cc-by-nc-4.0", "some-custom-terms"])
def test_red_or_unknown_licences_are_refused(
    aria_paths: AriaPaths, make_gguf: MakeGguf, licence: str
) -> None:
    store = _store(aria_paths)
    with pytest.raises(LicenceRejected, match="refuse"):
        store.import_file(make_gguf("nc", licence), accept_license=True)
    assert list(aria_paths.models.iterdir()) == []


def test_a_file_declaring_no_licence_is_refused(aria_paths: AriaPaths, make_gguf: MakeGguf) -> None:
    with pytest.raises(LicenceRejected, match=r"general\.license is missing"):
        _store(aria_paths).import_file(make_gguf("anon", None))


def test_denylisted_file_is_refused(aria_paths: AriaPaths, make_gguf: MakeGguf) -> None:
    source = make_gguf("bad", "mit")
    store = _store(aria_paths, denied=(sha256(source.read_bytes()),))
    with pytest.raises(DeniedFile, match="denylist"):
        store.import_file(source)
    assert store.installed() == []


def test_a_file_the_catalog_pins_becomes_that_catalog_model(
    aria_paths: AriaPaths, make_gguf: MakeGguf
) -> None:
    source = make_gguf("whatever-name", None)  # the catalog vouches for it, not its metadata
    entry = hub_entry("Pinned-1B", sha=sha256(source.read_bytes()))
    store = _store(aria_paths, entry)

    model = store.import_file(source)

    assert model.model_id == "Pinned-1B" and model.entry == entry
    assert model.manifest.hash_source is HashSource.CATALOG
    assert store.download("Pinned-1B") == model  # already there: no network needed
    with pytest.raises(StoreError, match="is the catalog model Pinned-1B"):
        store.import_file(source, model_id="other")


def test_an_id_taken_by_the_catalog_or_another_file_is_refused(
    aria_paths: AriaPaths, make_gguf: MakeGguf
) -> None:
    store = _store(aria_paths, hub_entry("Catalog-Model"))
    with pytest.raises(StoreError, match="is a catalog model"):
        store.import_file(make_gguf("a", "mit"), model_id="Catalog-Model")

    first = store.import_file(make_gguf("a", "mit", seed=1), model_id="mine")
    assert store.import_file(make_gguf("a", "mit", seed=1), model_id="mine") == first
    with pytest.raises(StoreError, match="another file is installed as mine"):
        store.import_file(make_gguf("b", "mit", seed=2), model_id="mine")


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", ".hidden", "", "name\n", "mine\n"])
def test_invalid_ids_are_refused_before_touching_disk(
    aria_paths: AriaPaths, make_gguf: MakeGguf, bad_id: str
) -> None:
    with pytest.raises(ModelNotFound, match="not a valid model id"):
        _store(aria_paths).import_file(make_gguf("x", "mit"), model_id=bad_id)


def test_non_gguf_and_missing_files_are_clear_errors(aria_paths: AriaPaths, tmp_path: Path) -> None:
    junk = tmp_path / "notes.gguf"
    junk.write_bytes(b"this is not a model" * 10)
    store = _store(aria_paths)
    with pytest.raises(StoreError, match="not a readable GGUF"):
        store.import_file(junk)
    with pytest.raises(StoreError, match="is not a file"):
        store.import_file(tmp_path / "absent.gguf")


def test_ternary_bitnet_imports_land_in_the_efficiency_tier(
    aria_paths: AriaPaths, make_gguf: MakeGguf
) -> None:
    model = _store(aria_paths).import_file(make_gguf("bitnet-tiny", "mit", arch="bitnet"))
    assert model.entry.tier is Tier.EFFICIENCY and model.entry.native_1bit
