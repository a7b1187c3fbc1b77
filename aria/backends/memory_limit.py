"""The worker's address-space cap (``RLIMIT_AS``), set once its model is loaded.

Bounds on client input (:mod:`aria.backends.bounds`) stop every known way to make a
worker allocate without limit; this cap is the safety net for the ones nobody found
yet: past it an allocation fails (``MemoryError`` in Python, the request's error)
instead of growing until the kernel's OOM killer picks a victim on the machine.

The cap is measured, not guessed::

    limit = address space in use after loading (the weights' mmap, KV cache, threads)
          + the model file's size again (an embedding context maps the weights anew)
          + headroom (compute buffers, grammars, thread arenas; ``WorkerLaunch``)

It is Linux-only (``/proc/self/status``) and off for GPU offload, whose drivers
reserve far more address space than memory.
"""

from __future__ import annotations

import resource
from pathlib import Path

__all__ = [
    "DEFAULT_HEADROOM_BYTES",
    "address_space_in_use",
    "address_space_left",
    "limit_address_space",
]

DEFAULT_HEADROOM_BYTES = 2 * 1024**3


def address_space_in_use(status: Path = Path("/proc/self/status")) -> int | None:
    """This process's virtual size in bytes (``VmSize``), or None where it is unknown."""
    try:
        text = status.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return None


def address_space_left(status: Path = Path("/proc/self/status")) -> int | None:
    """Bytes of address space this process may still map under its cap (None: no cap,
    or unknown). llama.cpp aborts on some failed allocations instead of reporting them,
    so a large one (a new context) is checked against this first."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    in_use = address_space_in_use(status)
    if soft == resource.RLIM_INFINITY or in_use is None:
        return None
    return max(0, soft - in_use)


def limit_address_space(headroom_bytes: int, model_path: Path) -> int | None:
    """Cap this process's address space (see the module docstring); returns the cap.

    Returns None (and changes nothing) where the address space cannot be measured.
    """
    in_use = address_space_in_use()
    if in_use is None:
        return None
    try:
        model_bytes = model_path.stat().st_size
    except OSError:
        model_bytes = 0
    limit = in_use + model_bytes + headroom_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit
