"""Start and stop RPC worker processes on this machine (``python -m aria.split.worker``).

A worker is its own process because ``ggml_backend_rpc_start_server`` blocks forever and
a crash in native code must not take anything else down. :func:`start_rpc_worker`
returns once the worker has announced itself (:class:`~aria.split.worker.WorkerReady`)
and its socket is listening, checked through the OS socket table rather than by
connecting (a ggml-rpc server serves one client at a time).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from aria.errors import AriaError, BackendUnavailable, ConfigError, ConsentRefused
from aria.split.ggml_rpc import LOOPBACK_HOST
from aria.split.worker import WorkerReady

__all__ = ["RpcWorker", "free_loopback_port", "listening_addresses", "start_rpc_worker"]

_POLL_S = 0.05
_STOP_GRACE_S = 3.0


@dataclass
class RpcWorker:
    """A running RPC worker process started by this process."""

    ready: WorkerReady
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def endpoint(self) -> str:
        return self.ready.endpoint

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled cable would end it."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the worker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        return int(probe.getsockname()[1])


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return [(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]


def start_rpc_worker(
    *,
    log_path: Path,
    threads: int,
    memory_gb: float | None = None,
    cache_dir: Path | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> RpcWorker:
    """Start a worker on 127.0.0.1 and wait until it listens.

    ``env`` replaces the child's environment (tests give each worker its own
    ``ARIA_HOME``); by default it inherits this process's.

    Raises:
        ConsentRefused / ConfigError: reported by the worker (it exits at once).
        BackendUnavailable: it died, or did not listen within ``timeout_s``.
    """
    endpoint = f"{LOOPBACK_HOST}:{port or free_loopback_port()}"
    argv = [
        sys.executable,
        "-m",
        "aria.split.worker",
        "--endpoint",
        endpoint,
        "--threads",
        str(threads),
    ]
    if memory_gb is not None:
        argv += ["--memory-gb", str(memory_gb)]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(os.environ if env is None else env),
        )
    deadline = time.monotonic() + timeout_s
    try:
        ready = _read_ready(process, log_path, deadline)
        _wait_listening(process, ready, log_path, deadline)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        assert process.stdout is not None
        process.stdout.close()  # only the ready line is ever read from it
    return RpcWorker(ready=ready, process=process, log_path=log_path)


def _read_ready(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> WorkerReady:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackendUnavailable("the RPC worker did not start in time")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                _raise_exit(process, log_path)
            buffer += chunk
    try:
        return WorkerReady.from_line(buffer.partition(b"\n")[0])
    except (ValueError, TypeError) as exc:
        raise BackendUnavailable(f"the RPC worker wrote an unexpected line: {exc}") from None


def _wait_listening(
    process: subprocess.Popen[bytes], ready: WorkerReady, log_path: Path, deadline: float
) -> None:
    port = int(ready.endpoint.rpartition(":")[2])
    while not any(p == port for _, p in listening_addresses(process.pid)):
        if process.poll() is not None:
            _raise_exit(process, log_path)
        if time.monotonic() > deadline:
            raise BackendUnavailable(f"the RPC worker did not listen on {ready.endpoint} in time")
        time.sleep(_POLL_S)


def _raise_exit(process: subprocess.Popen[bytes], log_path: Path) -> None:
    code = process.wait()
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit code {code}"
    message = last.removeprefix("error: ")
    by_code: dict[int, type[AriaError]] = {
        ConsentRefused.exit_code: ConsentRefused,
        ConfigError.exit_code: ConfigError,
    }
    raise by_code.get(code, BackendUnavailable)(f"the RPC worker stopped: {message}")
