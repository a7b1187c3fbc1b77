"""Small catalogs, tables and availabilities built in the tests themselves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aria.catalog.entries import (
    Capability,
    CatalogEntry,
    HuggingFaceSource,
    LicenceId,
    MemoryFloor,
    ModelId,
    Tier,
)
from aria.router import Availability, QueryClassifier, RoutingTable

CHAT = frozenset({Capability.CHAT})


def entry(
    model_id: str,
    tier: Tier = Tier.EFFICIENCY,
    caps: Iterable[Capability] = CHAT,
    *,
    context: int = 8192,
    one_bit: bool = False,
) -> CatalogEntry:
    return CatalogEntry(
        id=ModelId(model_id),
        name=model_id,
        family="test",
        tier=tier,
        architecture="llama",
        params_b=1.0,
        quantization="Q4_0",
        licence=LicenceId("Apache-2.0"),
        source=HuggingFaceSource(repo="test/" + model_id, file=model_id + ".gguf"),
        size_bytes=None,
        context_length=context,
        capabilities=frozenset(caps),
        memory=MemoryFloor(ram_gb=1.0, vram_gb=0.0),
        native_1bit=one_bit,
    )


DEFAULT = entry("tiny-default", Tier.QUALITY, {Capability.CHAT, Capability.EMBEDDING})


def available(
    entries: Iterable[CatalogEntry],
    installed: Iterable[str],
    *,
    profile: str = "full",
    gpu: bool = False,
    cap: int | None = None,
    peers: Iterable[str] = (),
    default: CatalogEntry = DEFAULT,
    bitnet_cpp: bool = False,
) -> Availability:
    catalog = {e.id: e for e in (*entries, default)}
    return Availability.build(
        profile=profile,
        gpu=gpu,
        catalog=catalog.values(),
        installed=[catalog[ModelId(m)] for m in installed],
        default_model=default.id,
        context_cap=cap,
        peers={ModelId(p): (f"peer-of-{p}",) for p in peers},
        bitnet_cpp=bitnet_cpp,
    )


def table(
    classifier: QueryClassifier,
    rows: Mapping[str, Mapping[str, Sequence[str]]],
    limits: Mapping[str, int] | None = None,
) -> RoutingTable:
    data: dict[str, Any] = {
        "categories": {c: {p: list(m) for p, m in r.items()} for c, r in rows.items()}
    }
    if limits is not None:
        data["limits"] = limits
    return RoutingTable.from_mapping(data, classifier)
