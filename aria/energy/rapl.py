"""RAPL package energy counters through Linux powercap (``/sys/class/powercap``).

``intel-rapl:N/energy_uj`` (also exposed on AMD) counts the whole CPU package's energy
in microjoules and wraps at ``max_energy_range_uj``; it is usually readable by root
only. :class:`RaplCounter` turns the wrapping counters of every package into one
running total, as long as it is read at least once per wrap period (minutes at full
power on the smallest ranges; the API reads it at every request start and end).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DEFAULT_POWERCAP", "RaplCounter", "RaplDomain", "counter_delta", "find_rapl_domains"]

DEFAULT_POWERCAP = Path("/sys/class/powercap")
_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")  # top level only: sub-domains are inside it


@dataclass(frozen=True)
class RaplDomain:
    name: str
    energy_file: Path
    max_range_uj: int


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


class RaplCounter:
    """The packages' energy since this counter was made, wraps included (joules)."""

    method: Literal["rapl"] = "rapl"

    def __init__(self, domains: list[RaplDomain]) -> None:
        if not domains:
            raise ValueError("a RAPL counter needs at least one readable domain")
        self._domains = domains
        self._last = self._read()
        self._total_uj = 0
        names = ", ".join(d.name for d in domains)
        self.label = f"RAPL package counters ({names}); whole CPU package, other processes included"

    def _read(self) -> list[int]:
        return [int(d.energy_file.read_text()) for d in self._domains]

    def joules(self) -> float:
        now = self._read()
        self._total_uj += sum(
            counter_delta(before, after, d.max_range_uj)
            for before, after, d in zip(self._last, now, self._domains, strict=True)
        )
        self._last = now
        return self._total_uj / 1e6
