"""What a snapshot means for ARIA: tier readiness, thread count, memory budget (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel, ConfigDict

from aria.catalog.entries import Tier
from aria.hardware.models import ACCELERATED_MIN_VRAM_BYTES, CpuInfo, GpuInfo, HardwareSnapshot

__all__ = [
    "Readiness",
    "TierAdvice",
    "memory_budget_bytes",
    "recommend_threads",
    "tier_support",
]

_GIB: Final = 1024**3
_GB: Final = 1e9
_MIN_RESERVE_BYTES: Final = 1 * _GIB

# Decode-thread curve n = 6 * params_b ** 0.62, calibrated on the seed measurements
# (1B peaks near 6 threads, 7B near 20); see recommend_threads.
_THREADS_AT_1B: Final = 6.0
_THREAD_EXPONENT: Final = 0.62

# KV cache for a 4k context plus compute buffers, on top of the weights.
_RUNTIME_OVERHEAD: Final = 1.25


@dataclass(frozen=True)
class _TierNeed:
    quantization: str
    bytes_per_param: float
    smallest_b: float  # below this, no model of the tier fits
    typical_b: float  # from this on, most of the tier's roster fits


_TIER_NEEDS: Final = MappingProxyType(
    {
        # BitNet b1.58 2B-4T, Falcon-E and Falcon3 1.58-bit (TQ2_0 is ~2.06 bits per weight)
        Tier.EFFICIENCY: _TierNeed("ternary", 0.26, 1.0, 3.0),
        # Qwen3, SmolLM3, Phi-4 mini, Granite, GLM-4 9B (Q4_K_M is ~4.85 bits per weight)
        Tier.QUALITY: _TierNeed("Q4", 0.61, 1.0, 4.0),
        # Qwen2.5-Coder 7B, DeepSeek-R1 distill 8B, Granite 3.3 8B; Phi-4 mini reasoning 3.8B
        Tier.SPECIALIST: _TierNeed("Q4", 0.61, 2.0, 8.0),
    }
)


class Readiness(StrEnum):
    READY = "ready"
    LIMITED = "limited"
    UNAVAILABLE = "unavailable"
    DETECTED = "detected"  # present, but not used for inference yet (NPUs)


class TierAdvice(BaseModel):
    """One line of advice: how well this machine serves a tier (or uses an NPU)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    tier: Tier | None
    readiness: Readiness
    detail: str
    max_params_b: float | None = None


def memory_budget_bytes(snapshot: HardwareSnapshot, *, reserve_fraction: float = 0.2) -> int:
    """RAM the node may fill with models: available RAM minus a safety reserve.

    The reserve is ``reserve_fraction`` of *total* RAM (at least 1 GiB): the OS, the API
    process and the user's other programs need room to grow after ARIA has loaded its
    models, and running out means swapping or the OOM killer, not a clean error.

    Raises:
        ValueError: ``reserve_fraction`` is not in [0, 1).
    """
    if not 0.0 <= reserve_fraction < 1.0:
        raise ValueError(f"reserve_fraction must be in [0, 1), not {reserve_fraction}")
    reserve = max(int(snapshot.memory.total_bytes * reserve_fraction), _MIN_RESERVE_BYTES)
    return max(0, snapshot.memory.available_bytes - reserve)


def recommend_threads(cpu: CpuInfo, params_b: float) -> int:
    """Decode threads for a model of ``params_b`` billion parameters on ``cpu``.

    Decoding one token streams every weight from RAM once, so it is bound by memory
    bandwidth, not arithmetic. Each thread adds what one core can pull until the
    memory controllers saturate; every thread also adds synchronisation (llama.cpp
    waits at a barrier after each operation). With W bytes of weights, time per token
    is about ``W / (n * b_core) + n * c_sync``, which is smallest near
    ``n = sqrt(W / (b_core * c_sync))``: the best thread count grows like the square
    root of the model size, so small models peak with few threads.

    The curve ``n = 6 * params_b ** 0.62`` goes through the seed's measurements (1B
    peaks near 6 threads, 7B near 20 on a 24-thread CPU); its exponent is close to
    that square-root law. It is capped at the physical core count: SMT siblings share
    one core's load/store units and caches, so a second thread per core adds barrier
    waits without adding bandwidth (the seed's 20-thread optimum for 7B on a 12-core
    CPU is served by its 12 cores here; ``aria bench`` measures the real curve of a
    machine). When the physical count is unknown, the logical count caps it.

    Raises:
        ValueError: ``params_b`` is not a positive finite number.
    """
    if not (math.isfinite(params_b) and params_b > 0):
        raise ValueError(f"params_b must be a positive number of billions, not {params_b}")
    ideal = round(_THREADS_AT_1B * math.pow(params_b, _THREAD_EXPONENT))
    cap = cpu.physical_cores or cpu.logical_cores
    return max(1, min(ideal, cap))


def _max_params_b(budget_bytes: float, bytes_per_param: float) -> float:
    return math.floor(budget_bytes / (bytes_per_param * _RUNTIME_OVERHEAD * _GB) * 10) / 10


def _kernel_note(cpu: CpuInfo) -> tuple[bool, str]:
    """Whether the ternary (and Q4) kernels have a fast SIMD path on this CPU, and which."""
    if cpu.has("avx512f", "avx512bw"):
        return True, "AVX-512 kernels"
    if cpu.has("avx2"):
        return True, "AVX2 kernels"
    if cpu.has("dotprod"):
        return True, "NEON dot-product kernels"
    if cpu.has("neon"):
        return False, "NEON without dot-product: slower kernels"
    return False, "no AVX2 or NEON: generic, slow kernels"


def _memory_tier(tier: Tier, budget: int, cpu: CpuInfo) -> TierAdvice:
    need = _TIER_NEEDS[tier]
    fits = _max_params_b(budget, need.bytes_per_param)
    size = f"{budget / _GB:.1f} GB for models fits {need.quantization} models up to ~{fits:g}B"
    fast, kernels = _kernel_note(cpu) if tier is Tier.EFFICIENCY else (True, "")
    detail = f"{size}; {kernels}" if kernels else size
    if fits < need.smallest_b:
        readiness = Readiness.UNAVAILABLE
        detail = f"{size}: too little RAM for this tier (needs ~{need.smallest_b:g}B)"
    elif fits < need.typical_b or not fast:
        readiness = Readiness.LIMITED
    else:
        readiness = Readiness.READY
    return TierAdvice(
        subject=tier.value, tier=tier, readiness=readiness, detail=detail, max_params_b=fits
    )


def _gpu_label(gpu: GpuInfo) -> str:
    memory = f"{(gpu.memory_bytes or 0) / _GB:.1f} GB" if gpu.memory_bytes else "unknown memory"
    return f"{gpu.name} ({memory}, {gpu.backend})"


def _accelerated(snapshot: HardwareSnapshot) -> TierAdvice:
    def advice(readiness: Readiness, detail: str, fits: float | None = None) -> TierAdvice:
        return TierAdvice(
            subject=Tier.ACCELERATED.value,
            tier=Tier.ACCELERATED,
            readiness=readiness,
            detail=detail,
            max_params_b=fits,
        )

    if snapshot.accelerator_gpus:
        best = max(snapshot.accelerator_gpus, key=lambda gpu: gpu.memory_bytes or 0)
        fits = _max_params_b(best.memory_bytes or 0, _TIER_NEEDS[Tier.QUALITY].bytes_per_param)
        return advice(Readiness.READY, f"offload to {_gpu_label(best)}: Q4 up to ~{fits:g}B", fits)
    minimum = f"{ACCELERATED_MIN_VRAM_BYTES / _GB:g} GB"
    small = [gpu for gpu in snapshot.gpus if gpu.offload]
    if small:
        return advice(Readiness.UNAVAILABLE, f"{_gpu_label(small[0])}: needs at least {minimum}")
    if snapshot.gpus:
        label = _gpu_label(snapshot.gpus[0])
        return advice(Readiness.UNAVAILABLE, f"{label}: ARIA offloads to CUDA, ROCm or Metal only")
    return advice(Readiness.UNAVAILABLE, "no GPU: models run on the CPU")


def tier_support(snapshot: HardwareSnapshot) -> list[TierAdvice]:
    """How well this machine serves each tier, plus a note per NPU.

    Efficiency needs fast ternary kernels (AVX2/AVX-512 or NEON dot-product) and a
    little RAM; Quality and Specialist are bounded by the memory budget; Accelerated
    needs a CUDA/ROCm/Metal GPU with at least 4 GB. NPUs are detected but not used yet.
    """
    budget = memory_budget_bytes(snapshot)
    advice = [_memory_tier(tier, budget, snapshot.cpu) for tier in _TIER_NEEDS]
    advice.append(_accelerated(snapshot))
    for npu in snapshot.npus:
        driver = f"driver {npu.driver}" if npu.driver else "no driver bound"
        advice.append(
            TierAdvice(
                subject="npu",
                tier=None,
                readiness=Readiness.DETECTED,
                detail=f"{npu.name} ({driver}): not used for inference yet",
            )
        )
    return advice
