"""Each request's share of the energy a source spent while it ran (pure arithmetic).

Requests overlap (several clients, several backends, batched decoding), and one energy
source — the package's RAPL counter, or a worker process's CPU time — serves all those
that run on it. :class:`EnergyShare` reads the source whenever a request starts or
ends and splits what was spent since the previous reading equally among the requests
running in that interval. So the shares of all requests add up to what the source
spent while any of them ran, and a request that ran alone gets all of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

__all__ = ["EnergyShare"]


class EnergyShare:
    """Apportions a running total (``read``, in joules) among open requests."""

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._last: float | None = None
        self._open: dict[Hashable, float] = {}

    def _settle(self) -> None:
        now = self._read()
        if self._last is not None and self._open:
            share = max(0.0, now - self._last) / len(self._open)
            for key in self._open:
                self._open[key] += share
        self._last = now

    def open(self, key: Hashable) -> None:
        """A request starts drawing on this source."""
        with self._lock:
            self._settle()
            self._open[key] = 0.0

    def close(self, key: Hashable) -> float:
        """The request ended: its share in joules (0.0 for a key never opened)."""
        with self._lock:
            if key not in self._open:
                return 0.0
            self._settle()
            return self._open.pop(key)

    @property
    def running(self) -> int:
        return len(self._open)
