"""Thread advice, memory budget and tier readiness (pure functions of a snapshot)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aria.catalog.entries import Tier
from aria.hardware import (
    CpuInfo,
    GpuInfo,
    HardwareSnapshot,
    MemoryInfo,
    NpuInfo,
    Readiness,
    TierAdvice,
    memory_budget_bytes,
    recommend_threads,
    tier_support,
)

GB = 10**9
GIB = 1024**3


def _cpu(
    physical: int | None = 12, logical: int = 24, features: frozenset[str] | None = None
) -> CpuInfo:
    return CpuInfo(
        vendor="AMD",
        model="test CPU",
        arch="x86_64",
        physical_cores=physical,
        logical_cores=logical,
        features=frozenset({"avx2", "fma"}) if features is None else features,
    )


def _snapshot(
    *,
    total: int = 32 * GIB,
    available: int = 28 * GIB,
    cpu: CpuInfo | None = None,
    gpus: tuple[GpuInfo, ...] = (),
    npus: tuple[NpuInfo, ...] = (),
) -> HardwareSnapshot:
    return HardwareSnapshot(
        cpu=cpu or _cpu(),
        memory=MemoryInfo(total_bytes=total, available_bytes=available),
        gpus=gpus,
        npus=npus,
        os="Linux",
        machine="x86_64",
    )


def _by_subject(snapshot: HardwareSnapshot) -> dict[str, TierAdvice]:
    return {a.subject: a for a in tier_support(snapshot) if a.tier is not None}


def test_thread_curve_matches_the_seed_measurements_when_cores_allow() -> None:
    big = _cpu(physical=64, logical=128)
    assert recommend_threads(big, 1.0) == 6
    assert recommend_threads(big, 7.0) == 20


def test_threads_never_exceed_physical_cores() -> None:
    cpu = _cpu(physical=12, logical=24)  # the seed's 24-thread CPU
    assert recommend_threads(cpu, 1.0) == 6
    assert recommend_threads(cpu, 7.0) == 12
    assert recommend_threads(cpu, 70.0) == 12


def test_threads_fall_back_to_logical_cores_when_physical_is_unknown() -> None:
    assert recommend_threads(_cpu(physical=None, logical=4), 7.0) == 4


def test_tiny_models_still_get_one_thread() -> None:
    assert recommend_threads(_cpu(), 0.01) == 1


@pytest.mark.parametrize("params_b", [0.0, -1.0, math.nan, math.inf])
def test_thread_advice_refuses_nonsense_sizes(params_b: float) -> None:
    with pytest.raises(ValueError, match="params_b"):
        recommend_threads(_cpu(), params_b)


@given(
    physical=st.one_of(st.none(), st.integers(1, 256)),
    logical=st.integers(1, 512),
    small=st.floats(0.05, 100.0),
    factor=st.floats(1.0, 10.0),
)
def test_threads_are_bounded_and_grow_with_model_size(
    physical: int | None, logical: int, small: float, factor: float
) -> None:
    cpu = _cpu(physical=physical, logical=logical)
    cap = physical or logical
    few, more = recommend_threads(cpu, small), recommend_threads(cpu, small * factor)
    assert 1 <= few <= more <= cap


def test_memory_budget_keeps_a_fifth_of_ram_in_reserve() -> None:
    snapshot = _snapshot(total=32 * GIB, available=28 * GIB)
    assert memory_budget_bytes(snapshot) == 28 * GIB - int(32 * GIB * 0.2)
    assert memory_budget_bytes(snapshot, reserve_fraction=0.5) == 12 * GIB


def test_memory_budget_reserves_at_least_one_gib_and_is_never_negative() -> None:
    assert memory_budget_bytes(_snapshot(total=2 * GIB, available=2 * GIB)) == GIB
    assert memory_budget_bytes(_snapshot(total=2 * GIB, available=GIB // 2)) == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2.0])
def test_memory_budget_refuses_nonsense_reserves(fraction: float) -> None:
    with pytest.raises(ValueError, match="reserve_fraction"):
        memory_budget_bytes(_snapshot(), reserve_fraction=fraction)


def test_a_roomy_avx2_machine_is_ready_for_every_cpu_tier() -> None:
    advice = _by_subject(_snapshot())
    for tier in (Tier.EFFICIENCY, Tier.QUALITY, Tier.SPECIALIST):
        assert advice[tier.value].readiness is Readiness.READY
    quality = advice["quality"]
    assert quality.max_params_b is not None and 25 < quality.max_params_b < 35
    assert "Q4 models up to" in quality.detail


def test_a_busy_4gb_machine_is_limited_for_quality_and_shut_out_of_specialist() -> None:
    advice = _by_subject(_snapshot(total=4 * GIB, available=2 * GIB))  # 1 GiB budget
    assert advice["efficiency"].readiness is Readiness.READY
    assert advice["quality"].readiness is Readiness.LIMITED
    assert advice["specialist"].readiness is Readiness.UNAVAILABLE
    assert "too little RAM" in advice["specialist"].detail


def test_without_avx2_the_efficiency_tier_is_limited() -> None:
    old = _cpu(features=frozenset({"sse4_2", "avx"}))
    efficiency = _by_subject(_snapshot(cpu=old))["efficiency"]
    assert efficiency.readiness is Readiness.LIMITED
    assert "slow" in efficiency.detail


def _gpu(memory: int | None, backend: str = "cuda") -> GpuInfo:
    return GpuInfo.model_validate(
        {"vendor": "NVIDIA", "name": "test GPU", "memory_bytes": memory, "backend": backend}
    )


def test_accelerated_needs_a_supported_gpu_with_4gb() -> None:
    ready = _by_subject(_snapshot(gpus=(_gpu(16 * GIB),)))["accelerated"]
    assert ready.readiness is Readiness.READY
    assert ready.max_params_b is not None and ready.max_params_b > 14

    small = _snapshot(gpus=(_gpu(2 * GIB),))
    assert not small.gpu_available
    assert "needs at least 4 GB" in _by_subject(small)["accelerated"].detail

    vulkan = _snapshot(gpus=(_gpu(24 * GIB, backend="vulkan"),))
    assert not vulkan.gpu_available
    assert "CUDA, ROCm or Metal" in _by_subject(vulkan)["accelerated"].detail

    assert _by_subject(_snapshot())["accelerated"].readiness is Readiness.UNAVAILABLE


def test_a_4gb_card_as_sold_counts() -> None:
    assert _snapshot(gpus=(_gpu(4096 * 1024 * 1024),)).gpu_available
    assert not _snapshot(gpus=(_gpu(3 * GIB),)).gpu_available


def test_each_npu_gets_a_detected_note() -> None:
    npus = (
        NpuInfo(vendor="AMD", name="XDNA", kind="xdna", driver="amdxdna"),
        NpuInfo(vendor="Intel", name="Intel NPU", kind="intel-npu"),
    )
    notes = [a for a in tier_support(_snapshot(npus=npus)) if a.subject == "npu"]
    assert [n.readiness for n in notes] == [Readiness.DETECTED, Readiness.DETECTED]
    assert "driver amdxdna" in notes[0].detail
    assert "no driver bound" in notes[1].detail
