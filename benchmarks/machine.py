"""What a benchmark records about the machine it ran on: the CPU model and the load."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_model", "uptime_load"]


def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo (Xeon and EPYC machines differ a lot)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def uptime_load() -> str:
    """The load averages as ``uptime`` prints them (the machine is shared)."""
    one, five, fifteen = Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]
    return f"load average: {one}, {five}, {fifteen}"
