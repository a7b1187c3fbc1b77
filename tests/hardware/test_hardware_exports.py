"""The public surface of aria.hardware is deliberate, and resolves lazily to the real objects."""

from __future__ import annotations

import pytest

import aria.hardware
from aria.hardware import advice, buildflags, detection, models, report


def test_the_public_surface_is_exactly_this() -> None:
    assert sorted(aria.hardware.__all__) == [
        "CpuInfo",
        "GpuInfo",
        "HardwareSnapshot",
        "MemoryInfo",
        "NpuInfo",
        "Readiness",
        "TierAdvice",
        "build_fingerprint",
        "detect",
        "hardware_report",
        "llama_cmake_args",
        "memory_budget_bytes",
        "recommend_threads",
        "tier_support",
    ]


def test_every_exported_name_is_the_object_its_module_defines() -> None:
    homes = (advice, buildflags, detection, models, report)
    for name in aria.hardware.__all__:
        exported = getattr(aria.hardware, name)
        assert any(getattr(home, name, None) is exported for home in homes), name
    assert callable(aria.hardware.detect)  # the function, not the submodule


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = aria.hardware.no_such_name
