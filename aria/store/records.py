"""One model as JSON: its catalog entry, whether and how it runs here, and its install.

``aria model list/info --json`` print it (docs/cli.md) and the API's ``GET /api/catalog``
serves it, so scripts and the dashboard read one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aria.catalog.entries import (
    CatalogEntry,
    ConvertedSource,
    HuggingFaceSource,
    LocalSource,
    WheelSource,
)
from aria.catalog.licences import classify
from aria.catalog.loader import Catalog
from aria.catalog.runnable import runnability
from aria.store.store import InstalledModel

__all__ = ["listed_entries", "model_record"]


def model_record(
    entry: CatalogEntry, installed: InstalledModel | None, *, bitnet_cpp: bool
) -> dict[str, Any]:
    """``entry`` with its source, ``runs_here`` verdict and ``installed`` state (or None)."""
    match entry.source:
        case HuggingFaceSource(repo=repo, file=file, revision=revision):
            source: dict[str, Any] = {
                "kind": "huggingface",
                "repo": repo,
                "file": file,
                "revision": revision,
            }
        case WheelSource(package=package, version=version, member=member):
            source = {"kind": "wheel", "package": package, "version": version, "member": member}
        case LocalSource(path=path):
            source = {"kind": "local", "path": str(path)}
        case ConvertedSource(repo=repo, revision=revision, target=target, recipe=recipe):
            source = {
                "kind": "checkpoint",
                "repo": repo,
                "revision": revision,
                "target": target,
                "recipe": recipe,
            }
    verdict = runnability(entry, bitnet_cpp=bitnet_cpp)
    record: dict[str, Any] = {
        "id": entry.id,
        "name": entry.name,
        "family": entry.family,
        "tier": entry.tier.value,
        "architecture": entry.architecture,
        "params_b": entry.params_b,
        "quantization": entry.quantization,
        "licence": entry.licence,
        "licence_class": classify(entry.licence).value,
        "context_length": entry.context_length,
        "capabilities": sorted(c.value for c in entry.capabilities),
        "memory": {"ram_gb": entry.memory.ram_gb, "vram_gb": entry.memory.vram_gb},
        "native_1bit": entry.native_1bit,
        "size_bytes": entry.size_bytes,
        "catalog_sha256": entry.sha256,
        "source": source,
        "runs_here": {
            "engine": verdict.engine.value if verdict.engine else None,
            "reason": verdict.reason,
            "remedy": verdict.remedy,
        },
        "installed": None,
    }
    if installed is not None:
        manifest = installed.manifest
        record["installed"] = {
            "path": str(installed.path),
            "size_bytes": installed.size_bytes,
            "sha256": manifest.sha256,
            "hash_source": manifest.hash_source.value,
            "verified_at": manifest.verified_at.isoformat(timespec="seconds"),
            "origin": "import" if manifest.imported else "catalog",
            "licence_accepted": bool(manifest.accepted_licence),
        }
    return record


def listed_entries(catalog: Catalog, installed: Mapping[str, InstalledModel]) -> list[CatalogEntry]:
    """The catalog, then installed models it does not list (imports)."""
    entries = list(catalog)
    known = {e.id for e in entries}
    return entries + [m.entry for m in installed.values() if m.entry.id not in known]
