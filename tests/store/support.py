"""Plain helpers for the store tests: test catalog entries, catalogs, payloads."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from aria.catalog.denylist import DeniedHash, Denylist
from aria.catalog.entries import (
    Capability,
    CatalogEntry,
    HuggingFaceSource,
    LicenceId,
    MemoryFloor,
    ModelId,
    Tier,
    WheelSource,
)
from aria.catalog.loader import Catalog
from aria.store import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05, read_timeout_s=5.0)


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (downloads do not care what the bytes are)."""
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hub_entry(
    model_id: str,
    *,
    repo: str = "aria-test/tiny",
    file: str = "tiny.gguf",
    revision: str = "main",
    sha: str | None = None,
    size: int | None = None,
) -> CatalogEntry:
    return _entry(
        model_id,
        HuggingFaceSource(repo=repo, file=file, revision=revision),
        sha=sha,
        size=size,
    )


def wheel_entry(
    model_id: str, *, package: str, version: str, member: str, wheel_sha: str, sha: str | None
) -> CatalogEntry:
    source = WheelSource(package=package, version=version, member=member, wheel_sha256=wheel_sha)
    return _entry(model_id, source, sha=sha, size=None)


def _entry(model_id: str, source: Any, *, sha: str | None, size: int | None) -> CatalogEntry:
    return CatalogEntry(
        id=ModelId(model_id),
        name=model_id,
        family="test",
        tier=Tier.EFFICIENCY,
        architecture="llama",
        params_b=0.001,
        quantization="F32",
        licence=LicenceId("Apache-2.0"),
        source=source,
        size_bytes=size,
        sha256=sha,
        context_length=256,
        capabilities=frozenset({Capability.CHAT}),
        memory=MemoryFloor(ram_gb=0.1, vram_gb=0.0),
    )


def catalog_of(*entries: CatalogEntry) -> Catalog:
    return Catalog(entries=entries, default_model_id=entries[0].id)


def denylist_of(*hashes: str) -> Denylist:
    return Denylist(
        entries=tuple(DeniedHash(sha256=h, reason="test: known bad file") for h in hashes)
    )


# -- a fake embedded-model wheel ------------------------------------------------------

PACKAGE, VERSION = "fake-pkg", "0.1"
MEMBER = "fake_pkg/Tiny.Q4_0.gguf"
WHEEL_NAME = "fake_pkg-0.1-py3-none-any.whl"
GGUF = payload(150_000, seed=21)  # any bytes: only hashes matter here


def build_wheel(
    folder: Path, member_bytes: bytes = GGUF, *, extra: dict[str, bytes] | None = None
) -> Path:
    """A minimal valid wheel holding one GGUF member and ``extra`` files (pip reads its
    METADATA)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / WHEEL_NAME
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fake_pkg/__init__.py", "")
        archive.writestr(MEMBER, member_bytes)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
        info = "fake_pkg-0.1.dist-info"
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: fake-pkg\nVersion: 0.1\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: aria-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def entry_for(wheel: Path, *, gguf_sha: str | None = None) -> CatalogEntry:
    return wheel_entry(
        "Tiny-Embedded",
        package=PACKAGE,
        version=VERSION,
        member=MEMBER,
        wheel_sha=sha256(wheel.read_bytes()),
        sha=gguf_sha if gguf_sha is not None else sha256(GGUF),
    )
