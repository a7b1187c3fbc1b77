"""Per-request energy for a serving node: RAPL for the package, else each worker's estimate.

With readable RAPL counters every request shares the one package counter with every
request running at the same time; without them each worker process is a source of its
own (its CPU time × TDP per core), shared among the requests it serves at once. Either
way a request's figure is its :class:`~aria.energy.share.EnergyShare` of what was spent
while it ran, labelled with how that was obtained.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

from aria.energy.estimate import ProcessCpuEnergy, load_tdp_table, tdp_estimate
from aria.energy.meter import EnergyReading, Method
from aria.energy.rapl import DEFAULT_POWERCAP, RaplCounter, find_rapl_domains
from aria.energy.share import EnergyShare

__all__ = ["EnergyAccounts", "OpenShare"]


@dataclass(frozen=True)
class OpenShare:
    """One request drawing on a source; :meth:`close` gives its energy (once)."""

    _share: EnergyShare
    _key: int
    _method: Method
    _label: str

    def close(self) -> EnergyReading:
        return EnergyReading(self._share.close(self._key), self._method, self._label)


class EnergyAccounts:
    """Where each request's energy comes from on this machine."""

    def __init__(self, *, cpu_model: str, powercap_root: Path = DEFAULT_POWERCAP) -> None:
        domains = find_rapl_domains(powercap_root)
        self._rapl = RaplCounter(domains) if domains else None
        self._package = EnergyShare(self._rapl.joules) if self._rapl is not None else None
        self._estimate = None if domains else tdp_estimate(cpu_model, load_tdp_table())
        self._workers: dict[int, tuple[ProcessCpuEnergy, EnergyShare]] = {}
        self._keys = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def method(self) -> Method:
        return "rapl" if self._rapl is not None else "estimate"

    def open(self, pid: int | None) -> OpenShare | None:
        """Start counting a request served by the process ``pid`` (None: unknown process,
        nothing to count without RAPL)."""
        key = next(self._keys)
        if self._package is not None and self._rapl is not None:
            self._package.open(key)
            return OpenShare(self._package, key, "rapl", self._rapl.label)
        if pid is None or self._estimate is None:
            return None
        with self._lock:
            entry = self._workers.get(pid)
            if entry is None or (not entry[0].running and entry[1].running == 0):
                self._forget_idle_exited()
                try:
                    source = ProcessCpuEnergy(self._estimate, pid)
                except Exception:  # the process is already gone
                    return None
                entry = self._workers[pid] = (source, EnergyShare(source.joules))
        source, share = entry
        share.open(key)
        return OpenShare(share, key, "estimate", source.label)

    def _forget_idle_exited(self) -> None:
        for pid, (source, share) in list(self._workers.items()):
            if share.running == 0 and not source.running:
                del self._workers[pid]
