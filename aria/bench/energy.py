"""Energy used while generating: RAPL counters when readable, else a labelled estimate.

RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``, also exposed on AMD) counts the
whole CPU package's energy in microjoules and wraps at ``max_energy_range_uj``; it is
usually readable by root only. Without it ARIA reports an *estimate* — process CPU time
× the chip's TDP per core from ``data/cpu_tdp.toml`` — and says so in every result.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import psutil

__all__ = [
    "DEFAULT_POWERCAP",
    "EnergyMeter",
    "EnergyReading",
    "RaplDomain",
    "TdpEstimate",
    "counter_delta",
    "find_rapl_domains",
    "load_tdp_table",
    "tdp_estimate",
]

DEFAULT_POWERCAP = Path("/sys/class/powercap")
_TRADEMARKS = re.compile(r"\((?:r|tm)\)")
_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")  # top level only: sub-domains are inside it


@dataclass(frozen=True)
class RaplDomain:
    name: str
    energy_file: Path
    max_range_uj: int


@dataclass(frozen=True)
class TdpEstimate:
    watts_per_core: float
    label: str


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    method: Literal["rapl", "estimate"]
    label: str  # how the number was obtained, shown next to it


def counter_delta(before: int, after: int, max_range_uj: int) -> int:
    """Microjoules between two readings of a counter that wraps at ``max_range_uj``."""
    if after >= before:
        return after - before
    return max_range_uj - before + after


def find_rapl_domains(root: Path = DEFAULT_POWERCAP) -> list[RaplDomain]:
    """Package-level RAPL domains whose counters this process can read (may be empty).

    ``psys`` (whole platform) is skipped when package domains exist: it would count twice.
    """
    domains: list[RaplDomain] = []
    if not root.is_dir():
        return domains
    for entry in sorted(root.iterdir()):
        if not _PACKAGE_DIR.match(entry.name):
            continue
        try:
            name = (entry / "name").read_text().strip()
            int((entry / "energy_uj").read_text())
            max_range = int((entry / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue  # unreadable (not root) or not a counter
        domains.append(RaplDomain(name, entry / "energy_uj", max_range))
    if any(d.name.startswith("package") for d in domains):
        domains = [d for d in domains if d.name != "psys"]
    return domains


def load_tdp_table() -> dict[str, Any]:
    text = resources.files("aria.bench").joinpath("data/cpu_tdp.toml").read_text("utf-8")
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


class EnergyMeter:
    """Measures the energy of one phase: ``start()`` then ``stop()``.

    With RAPL the figure is the whole package's (other processes included); the estimate
    covers this process only. ``method``/``label`` say which one a result is.
    """

    def __init__(self, *, cpu_model: str, powercap_root: Path = DEFAULT_POWERCAP) -> None:
        self._domains = find_rapl_domains(powercap_root)
        self._process = psutil.Process()
        self._estimate = None if self._domains else tdp_estimate(cpu_model, load_tdp_table())
        self._before: list[int] = []
        self._cpu_before = 0.0

    @property
    def method(self) -> Literal["rapl", "estimate"]:
        return "rapl" if self._domains else "estimate"

    @property
    def label(self) -> str:
        if self._estimate is not None:
            return self._estimate.label
        names = ", ".join(d.name for d in self._domains)
        return f"RAPL package counters ({names}); whole CPU package, other processes included"

    def start(self) -> None:
        self._before = self._read_rapl()
        self._cpu_before = self._cpu_seconds()

    def stop(self) -> EnergyReading:
        if self._estimate is not None:
            used = self._cpu_seconds() - self._cpu_before
            return EnergyReading(used * self._estimate.watts_per_core, "estimate", self.label)
        after = self._read_rapl()
        micro = sum(
            counter_delta(b, a, d.max_range_uj)
            for b, a, d in zip(self._before, after, self._domains, strict=True)
        )
        return EnergyReading(micro / 1e6, "rapl", self.label)

    def _read_rapl(self) -> list[int]:
        return [int(d.energy_file.read_text()) for d in self._domains]

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)
