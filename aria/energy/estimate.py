"""The labelled energy *estimate* used when no RAPL counter is readable.

A process's CPU time × the chip's TDP per core from ``data/cpu_tdp.toml``: every busy
core-second costs an equal share of the chip's thermal design power. It is a rough
figure, never a measurement, and every result carrying it says so in its label.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import psutil

__all__ = ["ProcessCpuEnergy", "TdpEstimate", "load_tdp_table", "tdp_estimate"]

_TRADEMARKS = re.compile(r"\((?:r|tm)\)")


@dataclass(frozen=True)
class TdpEstimate:
    watts_per_core: float
    label: str


def load_tdp_table() -> dict[str, Any]:
    text = resources.files("aria.energy").joinpath("data/cpu_tdp.toml").read_text("utf-8")
    return tomllib.loads(text)


def tdp_estimate(cpu_model: str, table: Mapping[str, Any]) -> TdpEstimate:
    """Watts per busy core for ``cpu_model``: first table match, else the table's default."""
    name = _normalise(cpu_model)
    entries: Sequence[Mapping[str, Any]] = table.get("cpu", [])
    chosen = next((e for e in entries if _normalise(str(e["match"])) in name), table["default"])
    per_core = float(chosen["tdp_w"]) / int(chosen["cores"])
    label = (
        f"ESTIMATE (no readable RAPL counters): process CPU time x {per_core:.2f} W per core "
        f"[{chosen['label']}; CPU '{cpu_model}']"
    )
    return TdpEstimate(per_core, label)


def _normalise(name: str) -> str:
    """``Intel(R) Xeon(R)  Platinum`` -> ``intel xeon platinum`` for substring matching."""
    return " ".join(_TRADEMARKS.sub(" ", name.lower()).split())


class ProcessCpuEnergy:
    """The estimated energy of one process's CPU time since this object was made (joules).

    Children count while they run (a worker's bitnet.cpp server); a process that has
    exited keeps its last reading (its work is done), and the total never goes back.
    """

    method: Literal["estimate"] = "estimate"

    def __init__(self, estimate: TdpEstimate, pid: int | None = None) -> None:
        self._process = psutil.Process(pid)
        self._watts_per_core = estimate.watts_per_core
        self.label = estimate.label
        self._last = 0.0
        self._start = self._cpu_seconds()
        self._last = self._start

    def _cpu_seconds(self) -> float:
        """The process's CPU time and its live children's (a worker's engine server)."""
        try:
            processes = [self._process, *self._process.children(recursive=True)]
        except psutil.Error:
            return self._last
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    @property
    def running(self) -> bool:
        try:
            return self._process.is_running()
        except psutil.Error:
            return False

    def joules(self) -> float:
        self._last = max(self._last, self._cpu_seconds())
        return (self._last - self._start) * self._watts_per_core
