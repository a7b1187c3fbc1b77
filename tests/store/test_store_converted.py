"""`aria model download` of a converted model: the published checkpoint is fetched over the
hub protocol (local server), every file verified, converted, hashed into the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.catalog.entries import (
    Capability,
    CatalogEntry,
    CheckpointFile,
    ConvertedSource,
    LicenceId,
    MemoryFloor,
    ModelId,
    Tier,
)
from aria.config import AriaPaths
from aria.convert.synthetic_checkpoint import CheckpointSpec, write_bitnet_checkpoint
from aria.errors import IntegrityError, StoreError
from aria.store import HashSource
from tests.helpers.hubserver import HubServer
from tests.store.conftest import StoreFactory
from tests.store.support import sha256

REPO = "tiiuae-test/Tiny-1.58bit"
FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors")


def _publish(hub: HubServer, tmp_path: Path, **spec: object) -> dict[str, bytes]:
    folder = write_bitnet_checkpoint(tmp_path / "published", CheckpointSpec(**spec))  # type: ignore[arg-type]
    contents = {name: (folder / name).read_bytes() for name in FILES}
    for name, content in contents.items():
        hub.add(REPO, name, content, lfs=name.endswith(".safetensors"))
    return contents


def _entry(*, pins: dict[str, str] | None = None, target: str = "TQ2_0") -> CatalogEntry:
    pins = pins or {}
    files = tuple(CheckpointFile(name=name, sha256=pins.get(name)) for name in FILES)
    return CatalogEntry(
        id=ModelId("Tiny-1.58bit"),
        name="Tiny 1.58-bit",
        family="test",
        tier=Tier.EFFICIENCY,
        architecture="llama",
        params_b=0.001,
        quantization=target,
        licence=LicenceId("TII-Falcon-2.0"),
        source=ConvertedSource(repo=REPO, files=files, target=target),
        context_length=512,
        capabilities=frozenset({Capability.CHAT}),
        memory=MemoryFloor(ram_gb=0.1),
        native_1bit=True,
    )


def test_download_fetches_verifies_and_converts(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths, tmp_path: Path
) -> None:
    contents = _publish(hub, tmp_path)
    entry = _entry(pins={"model.safetensors": sha256(contents["model.safetensors"])})
    seen: list[tuple[int, int]] = []
    model = make_store(entry).download(entry.id, progress=lambda d, t: seen.append((d, t)))

    assert model.path.name == "Tiny-1.58bit-TQ2_0.gguf"
    assert model.manifest.hash_source is HashSource.CONVERTED
    assert model.sha256 == sha256(model.path.read_bytes())
    sources = {s.name: s for s in model.manifest.sources}
    assert set(sources) == set(FILES)
    for name, content in contents.items():
        assert sources[name].sha256 == sha256(content)
    assert sources["model.safetensors"].verified_by == HashSource.CATALOG
    assert sources["config.json"].verified_by == HashSource.HUB_ETAG  # its git blob id
    assert seen[-1][0] == seen[-1][1] == sum(len(c) for c in contents.values())
    assert not (aria_paths.cache / "checkpoints" / entry.id).exists()  # staging cleared
    assert make_store(entry).verify(entry.id)[0].ok

    import gguf

    reader = gguf.GGUFReader(model.path)
    assert reader.fields["general.license"].contents() == "TII-Falcon-2.0"
    assert {t.tensor_type.name for t in reader.tensors if "ffn_up" in t.name} == {"TQ2_0"}


def test_a_corrupted_weight_file_is_refused(
    hub: HubServer, make_store: StoreFactory, tmp_path: Path, aria_paths: AriaPaths
) -> None:
    contents = _publish(hub, tmp_path)
    body = bytearray(contents["model.safetensors"])
    body[-1] ^= 0xFF
    hub.add(REPO, "model.safetensors", contents["model.safetensors"], served=bytes(body))
    entry = _entry()
    with pytest.raises(IntegrityError, match="model.safetensors"):
        make_store(entry).download(entry.id)
    assert not make_store(entry).is_installed(entry.id)
    staged = aria_paths.cache / "checkpoints" / entry.id
    assert not (staged / "model.safetensors").exists()


def test_a_tampered_small_file_fails_its_git_blob_id(
    hub: HubServer, make_store: StoreFactory, tmp_path: Path
) -> None:
    contents = _publish(hub, tmp_path)
    tampered = contents["config.json"].replace(b'"silu"', b'"gelu"')
    hub.add(REPO, "config.json", contents["config.json"], lfs=False, served=tampered)
    entry = _entry()
    with pytest.raises(IntegrityError, match="config.json.*git blob"):
        make_store(entry).download(entry.id)


def test_a_pin_that_disagrees_with_the_hub_downloads_nothing(
    hub: HubServer, make_store: StoreFactory, tmp_path: Path
) -> None:
    _publish(hub, tmp_path)
    entry = _entry(pins={"model.safetensors": "0" * 64})
    with pytest.raises(IntegrityError, match="different model.safetensors"):
        make_store(entry).download(entry.id)
    assert not any(h.method == "GET" for h in hub.hits)


def test_an_interrupted_download_resumes_and_a_failed_conversion_keeps_the_files(
    hub: HubServer, make_store: StoreFactory, tmp_path: Path, aria_paths: AriaPaths
) -> None:
    _publish(hub, tmp_path, n_layers=1)
    hub.faults.cuts = [1 << 30] * 3 + [4096]  # the weights GET drops after 4 KiB, resumes
    entry = _entry()
    store = make_store(entry)
    assert store.download(entry.id).manifest.hash_source is HashSource.CONVERTED
    assert any(r.startswith("bytes=") for r in hub.range_gets())

    # A checkpoint the llama graph cannot compute: refused, the verified files stay staged.
    other = tmp_path / "other"
    folder = write_bitnet_checkpoint(other, CheckpointSpec(n_layers=1, seed=5))
    config = (folder / "config.json").read_text().replace('"silu"', '"relu2"')
    hub.add(REPO, "config.json", config.encode(), lfs=False)
    store.remove(entry.id)
    with pytest.raises(StoreError, match="activation"):
        store.download(entry.id)
    staged = aria_paths.cache / "checkpoints" / entry.id
    assert (staged / "model.safetensors").is_file()
    gets = sum(1 for h in hub.hits if h.method == "GET" and h.path.endswith("safetensors"))
    with pytest.raises(StoreError, match="activation"):
        store.download(entry.id)
    again = sum(1 for h in hub.hits if h.method == "GET" and h.path.endswith("safetensors"))
    assert again == gets  # re-checked from the staging folder, not downloaded again
