"""Writing small files safely: one helper for every config, key, manifest and state file."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` so readers see the old file or the new one, never half of it.

    The file is created with ``mode`` (private by default: ARIA's small files hold
    keys, tokens and settings) in a directory only the user can enter.

    Raises:
        OSError: the file could not be written; the old file is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
