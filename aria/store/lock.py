"""One inter-process lock per model, so concurrent ARIA processes never write the same files.

The lock is an OS file lock (``filelock``), released by the kernel if the holder dies, so a
killed download never leaves a stale lock. A small ``.owner`` note says who holds it, only to
make the "busy" message useful.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from aria.errors import StoreBusy

__all__ = ["model_lock"]


@contextmanager
def model_lock(locks_dir: Path, model_id: str, *, action: str, timeout_s: float) -> Iterator[None]:
    """Hold the lock of ``model_id`` while ``action`` (e.g. "downloading") runs.

    Raises:
        StoreBusy: another process kept the lock for ``timeout_s`` seconds.
    """
    locks_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(locks_dir / f"{model_id}.lock", timeout=timeout_s)
    owner = locks_dir / f"{model_id}.owner"
    try:
        lock.acquire()
    except Timeout:
        raise StoreBusy(
            f"another ARIA process {_describe(owner)} {model_id}; "
            "wait for it to finish (or stop it) and try again"
        ) from None
    try:
        owner.write_text(f"{os.getpid()} {action}\n", encoding="utf-8")
        yield
    finally:
        with suppress(OSError):
            owner.unlink()
        lock.release()


def _describe(owner: Path) -> str:
    try:
        pid, action = owner.read_text(encoding="utf-8").split(maxsplit=1)
    except (OSError, ValueError):
        return "is using"
    return f"(pid {pid}) is {action.strip()}"
