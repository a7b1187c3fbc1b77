"""Energy used while working: RAPL counters when readable, else a labelled estimate.

An :class:`EnergySource` is a running total in joules: :class:`~aria.energy.rapl.RaplCounter`
(the whole package, measured) or :class:`~aria.energy.estimate.ProcessCpuEnergy` (one
process's CPU time × TDP per core, estimated). :func:`energy_source` picks the best one
this machine allows. :class:`EnergyMeter` measures one phase (``aria bench``);
:class:`~aria.energy.share.EnergyShare` splits a source among concurrent requests (the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from aria.energy.estimate import ProcessCpuEnergy, load_tdp_table, tdp_estimate
from aria.energy.rapl import DEFAULT_POWERCAP, RaplCounter, find_rapl_domains

__all__ = ["EnergyMeter", "EnergyReading", "EnergySource", "Method", "energy_source"]

Method = Literal["rapl", "estimate"]


class EnergySource(Protocol):
    """A running total of energy; ``label`` says how it is obtained."""

    @property
    def method(self) -> Method: ...

    @property
    def label(self) -> str: ...

    def joules(self) -> float: ...


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    method: Method
    label: str  # how the number was obtained, shown next to it


def energy_source(
    *, cpu_model: str, pid: int | None = None, powercap_root: Path = DEFAULT_POWERCAP
) -> EnergySource:
    """RAPL when this process can read it (the whole package), else the estimate for the
    process ``pid`` (this process when None)."""
    domains = find_rapl_domains(powercap_root)
    if domains:
        return RaplCounter(domains)
    return ProcessCpuEnergy(tdp_estimate(cpu_model, load_tdp_table()), pid)


class EnergyMeter:
    """Measures the energy of one phase: ``start()`` then ``stop()``.

    With RAPL the figure is the whole package's (other processes included); the estimate
    covers this process only. ``method``/``label`` say which one a result is.
    """

    def __init__(self, *, cpu_model: str, powercap_root: Path = DEFAULT_POWERCAP) -> None:
        self._source = energy_source(cpu_model=cpu_model, powercap_root=powercap_root)
        self._before = 0.0

    @property
    def method(self) -> Method:
        return self._source.method

    @property
    def label(self) -> str:
        return self._source.label

    def start(self) -> None:
        self._before = self._source.joules()

    def stop(self) -> EnergyReading:
        used = self._source.joules() - self._before
        return EnergyReading(used, self._source.method, self._source.label)
