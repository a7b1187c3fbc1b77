"""One node per ARIA home: the pid file, and stopping a running node.

``node/node.pid`` is created with O_EXCL when a node starts and removed when it
stops, together with ``node/control.json``. A pid file whose process is gone (a
crash, a reboot) is stale and replaced; one whose process lives means a node
already runs, and a second start is refused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from aria.config import AriaPaths
from aria.errors import NodeNotRunning, PeerError
from aria.p2p.control import control_file

__all__ = ["node_pid", "pid_file", "pid_lock", "stop_node"]


def pid_file(paths: AriaPaths) -> Path:
    return paths.node / "node.pid"


def node_pid(paths: AriaPaths) -> int | None:
    """The pid of the node running on this home, or None (stale files are ignored)."""
    try:
        pid = int(pid_file(paths).read_text("ascii").strip())
    except (OSError, ValueError):
        return None
    return pid if _is_node_process(pid) else None


def _is_node_process(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = " ".join(process.cmdline())
    except (psutil.Error, OSError):
        return False
    # Guards against pid reuse by an unrelated process after a crash.
    return "aria" in cmdline


@contextlib.contextmanager
def pid_lock(paths: AriaPaths) -> Iterator[None]:
    """Hold this home's node slot for the ``with`` block; clean up on the way out.

    Raises:
        PeerError: another node is running on this ARIA home.
    """
    paths.ensure()
    path = pid_file(paths)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            running = node_pid(paths)
            if running is not None and running != os.getpid():
                raise PeerError(
                    f"a node is already running on {paths.home} (pid {running}); "
                    "stop it with `aria node stop`"
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise PeerError(f"could not create {path}")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        control_file(paths).unlink(missing_ok=True)
        path.unlink(missing_ok=True)


def stop_node(paths: AriaPaths, timeout_s: float = 20.0) -> int:
    """Ask the running node to stop (SIGTERM) and wait until it has cleaned up.

    Returns the stopped node's pid.

    Raises:
        NodeNotRunning: no node runs on this home.
        PeerError: the node did not stop within ``timeout_s``.
    """
    pid = node_pid(paths)
    if pid is None:
        # Leftovers of a crashed node are not a running node: tidy them.
        pid_file(paths).unlink(missing_ok=True)
        control_file(paths).unlink(missing_ok=True)
        raise NodeNotRunning(f"no ARIA node is running on {paths.home}")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_node_process(pid) and not pid_file(paths).exists():
            return pid
        time.sleep(0.1)
    raise PeerError(f"the node (pid {pid}) did not stop within {timeout_s:.0f} s")
