"""One JSON view of this machine and what it means for each tier.

``aria hardware info --json`` prints it and the API's ``GET /api/hardware`` serves it,
so the terminal and the dashboard never disagree about the same snapshot.
"""

from __future__ import annotations

from typing import Any, Final

from aria.hardware.advice import memory_budget_bytes, recommend_threads, tier_support
from aria.hardware.cpu import FEATURE_GROUPS
from aria.hardware.models import HardwareSnapshot

__all__ = ["THREAD_ADVICE_SIZES_B", "hardware_report"]

# Model sizes (billions of parameters) for which the decode-thread advice is shown.
THREAD_ADVICE_SIZES_B: Final = (1.0, 3.0, 7.0)


def hardware_report(snapshot: HardwareSnapshot) -> dict[str, Any]:
    """``{"snapshot", "advice", "recommended_threads", "memory_budget_bytes",
    "feature_groups"}``; ``feature_groups`` lists, per ISA group, the features present."""
    cpu = snapshot.cpu
    return {
        "snapshot": snapshot.model_dump(mode="json"),
        "advice": [item.model_dump(mode="json") for item in tier_support(snapshot)],
        "recommended_threads": {
            f"{size:g}B": recommend_threads(cpu, size) for size in THREAD_ADVICE_SIZES_B
        },
        "memory_budget_bytes": memory_budget_bytes(snapshot),
        "feature_groups": {
            name: [feature for feature in names if feature in cpu.features]
            for name, names in FEATURE_GROUPS
        },
    }
