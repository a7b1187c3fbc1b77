"""Detection on the machine running the tests, checked against independent readers."""

from __future__ import annotations

import os
import platform

import cpuinfo
import psutil
import pytest

from aria.hardware import detect, recommend_threads, tier_support
from aria.hardware.cpu import KNOWN_FEATURES


@pytest.mark.skipif(platform.system() != "Linux", reason="the CI machine runs Linux")
def test_detect_reads_this_machine_sanely() -> None:
    snap = detect()
    cpu = snap.cpu
    assert snap.os == "Linux"
    assert cpu.arch == platform.machine().lower()
    assert cpu.model and cpu.model != "unknown"
    assert cpu.logical_cores == os.cpu_count()
    assert cpu.physical_cores == psutil.cpu_count(logical=False)
    assert cpu.features <= KNOWN_FEATURES
    memory = psutil.virtual_memory()
    assert abs(snap.memory.total_bytes - memory.total) <= memory.total * 0.01
    assert 0 < snap.memory.available_bytes <= snap.memory.total_bytes
    assert 1 <= recommend_threads(cpu, 7.0) <= cpu.logical_cores
    assert tier_support(snap)


@pytest.mark.skipif(platform.machine() not in {"x86_64", "AMD64"}, reason="x86 flags only")
def test_x86_features_agree_with_py_cpuinfo() -> None:
    """py-cpuinfo reads CPUID itself: an independent check of the /proc/cpuinfo parser."""
    theirs = set(cpuinfo.get_cpu_info()["flags"])
    ours = detect().cpu.features
    for feature, their_name in {"avx2": "avx2", "fma": "fma", "avx512f": "avx512f"}.items():
        assert (feature in ours) == (their_name in theirs), feature
