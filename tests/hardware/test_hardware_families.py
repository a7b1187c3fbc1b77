"""Detection on recorded machines of the four CPU families, and what it means for ARIA."""

from __future__ import annotations

import json

import pytest

from aria.catalog.entries import Tier
from aria.hardware import (
    HardwareSnapshot,
    Readiness,
    TierAdvice,
    llama_cmake_args,
    recommend_threads,
    tier_support,
)
from aria.profiles import enabled_tiers
from tests.hardware.recorded import FAMILIES, recorded

MIB = 1024 * 1024


def _advice(snapshot: HardwareSnapshot, subject: str) -> TierAdvice:
    (item,) = [a for a in tier_support(snapshot) if a.subject == subject]
    return item


def test_intel_sapphire_rapids_with_nvidia_gpu() -> None:
    snap = recorded("intel-xeon-sapphire-rapids").detect()
    cpu = snap.cpu
    assert (cpu.vendor, cpu.model, cpu.arch) == ("Intel", "Intel(R) Xeon(R) w5-3435X", "x86_64")
    assert (cpu.physical_cores, cpu.logical_cores) == (16, 32)
    assert cpu.has("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")
    assert cpu.has("avx512_vbmi", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
    assert not cpu.features & {"neon", "dotprod", "sve"}
    assert snap.memory.total_bytes == 131453720 * 1024
    assert snap.memory.available_bytes == 121877340 * 1024
    (gpu,) = snap.gpus
    assert (gpu.vendor, gpu.name, gpu.backend) == (
        "NVIDIA",
        "NVIDIA RTX 6000 Ada Generation",
        "cuda",
    )
    assert (gpu.memory_bytes, gpu.driver) == (49140 * MIB, "550.90.07")
    assert snap.npus == ()
    assert snap.gpu_available
    assert Tier.ACCELERATED in enabled_tiers("balanced", gpu_available=snap.gpu_available)
    assert _advice(snap, "accelerated").readiness is Readiness.READY
    assert "AVX-512" in _advice(snap, "efficiency").detail
    # 7B wants ~20 threads; SMT siblings do not count, so the 16 cores cap it.
    assert recommend_threads(cpu, 1) == 6
    assert recommend_threads(cpu, 7) == 16


def test_intel_amx_is_off_in_the_build_flags_even_though_the_cpu_has_it() -> None:
    cpu = recorded("intel-xeon-sapphire-rapids").detect().cpu
    assert llama_cmake_args(cpu) == [
        "-DGGML_RPC=ON",
        "-DGGML_NATIVE=OFF",
        "-DGGML_SSE42=ON",
        "-DGGML_AVX=ON",
        "-DGGML_AVX2=ON",
        "-DGGML_BMI2=ON",
        "-DGGML_FMA=ON",
        "-DGGML_F16C=ON",
        "-DGGML_AVX_VNNI=ON",
        "-DGGML_AVX512=ON",
        "-DGGML_AVX512_VBMI=ON",
        "-DGGML_AVX512_VNNI=ON",
        "-DGGML_AVX512_BF16=ON",
        "-DGGML_AMX_TILE=OFF",
        "-DGGML_AMX_INT8=OFF",
        "-DGGML_AMX_BF16=OFF",
    ]


def test_amd_zen4_with_rocm_gpus_and_xdna_npu() -> None:
    snap = recorded("amd-ryzen-zen4").detect()
    cpu = snap.cpu
    assert (cpu.vendor, cpu.model) == ("AMD", "AMD Ryzen 9 7940HS w/ Radeon 780M Graphics")
    assert (cpu.physical_cores, cpu.logical_cores) == (8, 16)
    assert cpu.has("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_vbmi", "avx512_bf16")
    assert not cpu.features & {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}  # not on Zen 4
    discrete, integrated = snap.gpus
    assert discrete.name == "AMD Navi 33 [Radeon RX 7700S/7600/7600S/7600M XT/PRO W7600]"
    assert (discrete.backend, discrete.memory_bytes) == ("rocm", 8573157376)
    assert discrete.driver == "amdgpu (ROCm 6.2.4-120)"
    assert (integrated.name, integrated.memory_bytes) == ("AMD Phoenix1", 512 * MIB)
    # The 512 MB iGPU runs ROCm too, but only the 8 GB card can carry the Accelerated tier.
    assert snap.accelerator_gpus == (discrete,)
    (npu,) = snap.npus
    assert (npu.vendor, npu.kind, npu.driver) == ("AMD", "xdna", "amdxdna")
    npu_advice = _advice(snap, "npu")
    assert npu_advice.readiness is Readiness.DETECTED
    assert "not used for inference yet" in npu_advice.detail
    assert "Radeon RX 7700S" in _advice(snap, "accelerated").detail
    assert recommend_threads(cpu, 7) == 8
    args = llama_cmake_args(cpu)
    assert "-DGGML_AVX512_BF16=ON" in args
    assert "-DGGML_AVX_VNNI=OFF" in args
    assert "-DGGML_AMX_INT8=OFF" in args


def test_apple_silicon_with_metal_and_neural_engine() -> None:
    snap = recorded("apple-m3-pro").detect()
    cpu = snap.cpu
    assert (cpu.vendor, cpu.model, cpu.arch) == ("Apple", "Apple M3 Pro", "arm64")
    assert (cpu.physical_cores, cpu.logical_cores) == (12, 12)
    assert cpu.features == {"neon", "dotprod", "i8mm", "bf16"}
    assert snap.os == "Darwin"
    assert snap.memory.total_bytes == 36 * 1024**3
    assert snap.memory.available_bytes == (38744 + 853012 + 12345) * 16384
    (gpu,) = snap.gpus
    assert (gpu.vendor, gpu.backend, gpu.name) == ("Apple", "metal", "Apple M3 Pro GPU")
    assert (gpu.memory_bytes, gpu.driver) == (36 * 1024**3, "macOS 14.4.1")
    assert snap.gpu_available
    (npu,) = snap.npus
    assert (npu.vendor, npu.kind) == ("Apple", "ane")
    assert "NEON dot-product" in _advice(snap, "efficiency").detail
    assert llama_cmake_args(cpu) == ["-DGGML_RPC=ON", "-DGGML_NATIVE=ON"]


def test_snapdragon_x_elite_with_hexagon() -> None:
    snap = recorded("qualcomm-snapdragon-x-elite").detect()
    cpu = snap.cpu
    assert (cpu.vendor, cpu.arch) == ("Qualcomm", "aarch64")
    assert cpu.model == "Qualcomm Oryon (Snapdragon X1E80100)"
    # Arm /proc/cpuinfo has no core ids: the count comes from sysfs SMT-sibling groups.
    assert (cpu.physical_cores, cpu.logical_cores) == (12, 12)
    assert cpu.features == {"neon", "dotprod", "i8mm", "bf16"}  # Oryon has no SVE
    assert snap.gpus == ()  # the Adreno GPU is a platform device ARIA cannot offload to
    assert not snap.gpu_available
    assert Tier.ACCELERATED not in enabled_tiers("full", gpu_available=snap.gpu_available)
    (npu,) = snap.npus
    assert (npu.vendor, npu.kind, npu.driver) == ("Qualcomm", "hexagon", "fastrpc")
    assert "X1E80100" in npu.name
    assert _advice(snap, "efficiency").readiness is Readiness.READY
    assert _advice(snap, "accelerated").readiness is Readiness.UNAVAILABLE
    assert llama_cmake_args(cpu) == ["-DGGML_RPC=ON", "-DGGML_NATIVE=ON"]


@pytest.mark.parametrize("family", FAMILIES)
def test_snapshot_survives_a_json_round_trip(family: str) -> None:
    snap = recorded(family).detect()
    text = snap.model_dump_json()
    assert HardwareSnapshot.model_validate_json(text) == snap
    features = json.loads(text)["cpu"]["features"]
    assert features == sorted(features)  # deterministic bytes for the peer handshake


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_gets_advice_for_every_tier(family: str) -> None:
    advice = tier_support(recorded(family).detect())
    assert [a.tier for a in advice if a.tier is not None] == list(Tier)
