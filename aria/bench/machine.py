"""Describe the machine a benchmark ran on, so results can be compared across machines."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from typing import Any

from aria import __version__
from aria.hardware import HardwareSnapshot

__all__ = ["describe_machine"]

# Environment that changes llama.cpp's speed: OpenMP's spin-wait policy alone moves decode
# several-fold on a busy machine.
_TUNING_ENV = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OMP_PROC_BIND", "GOMP_SPINCOUNT")


def describe_machine(snapshot: HardwareSnapshot) -> dict[str, Any]:
    """CPU, ISA features, cores, RAM, llama.cpp build flags, versions and the load at start.

    The load average matters: on a machine shared with other work, rates are lower
    than the hardware allows, and the JSON should say so.
    """
    import llama_cpp

    from aria.bench.runner import llama_system_info

    load1, load5, _ = os.getloadavg()
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "aria_version": __version__,
        "python": platform.python_version(),
        "hardware": snapshot.model_dump(mode="json"),
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system_info": llama_system_info(),
        "llama_cpp_supports_rpc": bool(llama_cpp.llama_supports_rpc()),
        "load_average_at_start": {"1min": load1, "5min": load5},
        "environment": {name: os.environ[name] for name in _TUNING_ENV if name in os.environ},
    }
