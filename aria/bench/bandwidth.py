"""Measure this machine's memory read bandwidth (the roofline's numerator).

numpy's reductions stream an array once and release the GIL, so summing disjoint chunks
from a few threads reads memory about as fast as llama.cpp's decode threads can. The
buffer must be far larger than the last-level cache (default 512 MiB) so caches do not
flatter the result; the best of several repeats is kept because a shared machine only
ever slows a run down.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["Bandwidth", "measure_read_bandwidth"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Bandwidth:
    bytes_per_s: float
    threads: int  # thread count that reached it
    buffer_mib: int
    repeats: int
    by_threads: dict[int, float]  # best bytes/s for each thread count tried

    def as_dict(self) -> dict[str, object]:
        return {
            "read_gb_s": self.bytes_per_s / 1e9,
            "threads": self.threads,
            "buffer_mib": self.buffer_mib,
            "repeats": self.repeats,
            "method": "numpy sum over disjoint chunks, one per thread; best of repeats",
            "by_threads_gb_s": {str(k): v / 1e9 for k, v in self.by_threads.items()},
        }


def measure_read_bandwidth(
    *, buffer_mib: int = 512, repeats: int = 5, max_threads: int = 1
) -> Bandwidth:
    """Best read bandwidth over 1..``max_threads`` threads.

    Raises:
        ValueError: a buffer under 64 MiB (it would fit in cache) or no repeats.
    """
    if buffer_mib < 64 or repeats < 1 or max_threads < 1:
        raise ValueError("need buffer_mib >= 64, repeats >= 1 and max_threads >= 1")
    data = np.ones(buffer_mib * _MIB // 8, dtype=np.float64)  # touched: pages really exist
    by_threads: dict[int, float] = {}
    try:
        for threads in range(1, max_threads + 1):
            chunks = np.array_split(data, threads)
            with ThreadPoolExecutor(threads) as pool:
                best = min(_timed(pool, chunks) for _ in range(repeats))
            by_threads[threads] = data.nbytes / best
    finally:
        del data
    threads = max(by_threads, key=lambda k: by_threads[k])
    return Bandwidth(by_threads[threads], threads, buffer_mib, repeats, by_threads)


def _timed(pool: ThreadPoolExecutor, chunks: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for _ in pool.map(np.sum, chunks):
        pass
    return time.perf_counter() - start
