"""The hardware snapshot: frozen, typed values that survive a JSON round trip.

A snapshot travels in the peer handshake, so serialisation is deterministic (feature
sets are written sorted) and unknown fields are refused.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

__all__ = [
    "ACCELERATED_MIN_VRAM_BYTES",
    "OFFLOAD_BACKENDS",
    "CpuInfo",
    "GpuBackend",
    "GpuInfo",
    "HardwareSnapshot",
    "MemoryInfo",
    "NpuInfo",
    "NpuKind",
]

GpuBackend = Literal["cuda", "rocm", "metal", "vulkan"]
NpuKind = Literal["xdna", "xdna2", "intel-npu", "hexagon", "ane"]

OFFLOAD_BACKENDS: Final[frozenset[str]] = frozenset({"cuda", "rocm", "metal"})
"""Backends ARIA's llama.cpp build can offload layers to."""

ACCELERATED_MIN_VRAM_BYTES: Final = 4_000_000_000
"""Least GPU memory (4 GB, as cards are sold) that makes the Accelerated tier worth it:
its smallest models (8B at Q4) need about 5 GB, so less than 4 GB offloads too few layers."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CpuInfo(_Frozen):
    vendor: str
    model: str
    arch: str = Field(description='"x86_64", "aarch64" (Linux) or "arm64" (macOS).')
    physical_cores: int | None = Field(
        default=None, ge=1, description="None when the OS does not say."
    )
    logical_cores: int = Field(ge=1)
    features: frozenset[str] = Field(
        default=frozenset(), description="ARIA feature names (aria.hardware.cpu.FEATURE_GROUPS)."
    )

    @field_serializer("features")
    def _sorted_features(self, features: frozenset[str]) -> list[str]:
        return sorted(features)

    def has(self, *features: str) -> bool:
        """True when the CPU has every one of ``features``."""
        return all(feature in self.features for feature in features)


class MemoryInfo(_Frozen):
    total_bytes: int = Field(ge=0)
    available_bytes: int = Field(ge=0)


class GpuInfo(_Frozen):
    vendor: str
    name: str
    memory_bytes: int | None = Field(
        default=None, ge=0, description="VRAM (unified memory on Apple)."
    )
    backend: GpuBackend
    driver: str | None = None

    @property
    def offload(self) -> bool:
        """True when ARIA's llama.cpp build can offload layers to this GPU."""
        return self.backend in OFFLOAD_BACKENDS


class NpuInfo(_Frozen):
    """An NPU ARIA has detected; none is used for inference yet."""

    vendor: str
    name: str
    kind: NpuKind
    driver: str | None = Field(default=None, description="Kernel driver bound to it, when one is.")


class HardwareSnapshot(_Frozen):
    cpu: CpuInfo
    memory: MemoryInfo
    gpus: tuple[GpuInfo, ...] = ()
    npus: tuple[NpuInfo, ...] = ()
    os: str = Field(description='platform.system(): "Linux", "Darwin", ...')
    machine: str = Field(description="platform.machine() as the OS spells it.")

    @property
    def accelerator_gpus(self) -> tuple[GpuInfo, ...]:
        """GPUs worth offloading to: a supported backend and at least 4 GB of memory."""
        return tuple(
            gpu
            for gpu in self.gpus
            if gpu.offload and (gpu.memory_bytes or 0) >= ACCELERATED_MIN_VRAM_BYTES
        )

    @property
    def gpu_available(self) -> bool:
        """True when a GPU can carry the Accelerated tier (see ``accelerator_gpus``).

        A 512 MB integrated GPU has a ROCm or Metal backend too, but turning the
        Accelerated tier on for it would route 8-14B models to memory it lacks.
        """
        return bool(self.accelerator_gpus)
