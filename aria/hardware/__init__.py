"""Hardware detection, tier advice, thread advice and llama.cpp build flags.

Names are imported on first use (PEP 562): the install script runs
``python -m aria.hardware.buildflags`` before pydantic is installed, and Python imports
this package first, so nothing here may import the pydantic-based modules eagerly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aria._lazy import lazy_exports

if TYPE_CHECKING:
    from aria.hardware.advice import (
        Readiness,
        TierAdvice,
        memory_budget_bytes,
        recommend_threads,
        tier_support,
    )
    from aria.hardware.buildflags import build_fingerprint, llama_cmake_args
    from aria.hardware.detection import detect
    from aria.hardware.models import (
        CpuInfo,
        GpuInfo,
        HardwareSnapshot,
        MemoryInfo,
        NpuInfo,
    )
    from aria.hardware.report import hardware_report

__all__ = [
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

_HOMES = {
    "CpuInfo": "models",
    "GpuInfo": "models",
    "HardwareSnapshot": "models",
    "MemoryInfo": "models",
    "NpuInfo": "models",
    "Readiness": "advice",
    "TierAdvice": "advice",
    "build_fingerprint": "buildflags",
    "detect": "detection",
    "hardware_report": "report",
    "llama_cmake_args": "buildflags",
    "memory_budget_bytes": "advice",
    "recommend_threads": "advice",
    "tier_support": "advice",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
