"""Listing, lookups, verify and rm on an installed store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aria.config import AriaPaths
from aria.errors import IntegrityError, ModelNotInstalled, StoreBusy
from aria.store import ModelStore
from aria.store.lock import model_lock
from tests.store.support import catalog_of, denylist_of, hub_entry, sha256

MakeGguf = Callable[..., Path]


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def store(aria_paths: AriaPaths, clock: _Clock) -> ModelStore:
    catalog = catalog_of(hub_entry("Catalog-Model"))
    return ModelStore(aria_paths, catalog, denylist_of(), clock=clock, lock_timeout_s=0.1)


def test_path_of_a_missing_model_says_how_to_get_it(store: ModelStore) -> None:
    with pytest.raises(ModelNotInstalled, match=r"run `aria model download Catalog-Model`"):
        store.path_of("catalog-model")  # catalog ids are case-insensitive
    with pytest.raises(ModelNotInstalled, match=r"`aria model download <id>`"):
        store.path_of("nothing-like-it")


def test_verify_passes_and_refreshes_the_verification_time(
    store: ModelStore, make_gguf: MakeGguf, clock: _Clock
) -> None:
    model = store.import_file(make_gguf("m", "mit"))
    clock.now += timedelta(days=3)

    [result] = store.verify("m")

    assert result.ok and model.sha256 in result.detail
    assert store.get("m").manifest.verified_at == clock.now
    assert store.get("m").manifest.installed_at == clock.now - timedelta(days=3)


def test_verify_detects_a_corrupted_file_and_removes_it(
    store: ModelStore, make_gguf: MakeGguf, aria_paths: AriaPaths
) -> None:
    store.import_file(make_gguf("good", "mit", seed=1))
    bad = store.import_file(make_gguf("bad", "mit", seed=2))
    data = bytearray(bad.path.read_bytes())
    data[-10] ^= 0x55  # same size: only a re-hash can tell
    bad.path.write_bytes(bytes(data))
    assert store.is_installed("bad")  # reads trust the manifest...

    results = {r.model_id: r for r in store.verify()}  # ...verify does not

    assert results["good"].ok
    assert not results["bad"].ok and "corrupted" in results["bad"].detail
    assert "aria model import" in results["bad"].detail
    assert not (aria_paths.models / "bad").exists()
    assert [m.model_id for m in store.installed()] == ["good"]


def test_a_file_that_changed_size_is_not_served(store: ModelStore, make_gguf: MakeGguf) -> None:
    model = store.import_file(make_gguf("m", "mit"))
    with model.path.open("ab") as stream:
        stream.write(b"tampered")
    with pytest.raises(IntegrityError, match="changed size"):
        store.path_of("m")
    assert not store.is_installed("m")
    [result] = store.verify("m")
    assert not result.ok


def test_verify_flags_a_file_denylisted_after_install(
    aria_paths: AriaPaths, make_gguf: MakeGguf
) -> None:
    catalog = catalog_of(hub_entry("x"))
    model = ModelStore(aria_paths, catalog, denylist_of()).import_file(make_gguf("m", "mit"))
    later = ModelStore(aria_paths, catalog, denylist_of(model.sha256))
    [result] = later.verify()
    assert not result.ok and "denylist" in result.detail


def test_an_unreadable_manifest_is_reported_by_verify(
    store: ModelStore, make_gguf: MakeGguf, aria_paths: AriaPaths
) -> None:
    store.import_file(make_gguf("m", "mit"))
    (aria_paths.models / "m" / "manifest.json").write_text("{not json")
    assert store.installed() == []
    [result] = store.verify()
    assert not result.ok and "not a valid model manifest" in result.detail


def test_rm_deletes_everything_and_refuses_unknown_ids(
    store: ModelStore, make_gguf: MakeGguf, aria_paths: AriaPaths
) -> None:
    store.import_file(make_gguf("m", "mit"))
    store.remove("M")  # folder names match ignoring case, like catalog ids
    assert not (aria_paths.models / "m").exists()
    with pytest.raises(ModelNotInstalled, match="nothing to remove"):
        store.remove("m")
    with pytest.raises(ModelNotInstalled):
        store.verify("m")


def test_rm_refuses_while_another_process_holds_the_model(
    store: ModelStore, make_gguf: MakeGguf, aria_paths: AriaPaths
) -> None:
    store.import_file(make_gguf("m", "mit"))
    locks = aria_paths.models / ".locks"
    with (
        model_lock(locks, "m", action="downloading", timeout_s=1),
        pytest.raises(StoreBusy, match="is downloading m"),
    ):
        store.remove("m")
    assert store.is_installed("m")


def test_installed_lists_sorted_models_with_their_entries(
    store: ModelStore, make_gguf: MakeGguf
) -> None:
    b = store.import_file(make_gguf("b-model", "mit", seed=1))
    a = store.import_file(make_gguf("a-model", "bsd-3-clause", seed=2))
    assert [m.model_id for m in store.installed()] == ["a-model", "b-model"]
    assert store.get("b-model") == b and a.entry.licence == "BSD-3-Clause"
    assert a.sha256 == sha256(a.path.read_bytes())
