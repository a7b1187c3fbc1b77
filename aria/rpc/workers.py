"""Start and stop RPC worker processes on this machine (``python -m aria.rpc.worker``).

A worker is its own process because ``ggml_backend_rpc_start_server`` blocks forever and
a crash in native code must not take anything else down. It gets an empty environment
(only what Python and OpenMP need), a fresh private working directory (removed when it
stops) and, when this process is root, an unprivileged uid to serve as
(:mod:`aria.rpc.sandbox`). :func:`start_rpc_worker` returns once the worker has
announced itself (:class:`~aria.rpc.worker.WorkerReady`) and its socket is listening,
checked through the OS socket table rather than by connecting (a ggml-rpc server serves
one client at a time).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

import aria
from aria.errors import AriaError, BackendUnavailable, ConfigError
from aria.rpc.ggml_rpc import LOOPBACK_HOST
from aria.rpc.sandbox import unprivileged_ids
from aria.rpc.worker import WorkerReady

__all__ = [
    "RpcWorker",
    "free_loopback_port",
    "listening_addresses",
    "start_rpc_worker",
    "worker_environment",
]

_POLL_S = 0.05
_STOP_GRACE_S = 3.0


@dataclass
class RpcWorker:
    """A running RPC worker process started by this process."""

    ready: WorkerReady
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path

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
        shutil.rmtree(self.workdir, ignore_errors=True)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


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


def worker_environment() -> dict[str, str]:
    """The whole environment a worker gets: how to find ARIA's code, and quiet OpenMP.

    Idle OpenMP threads must sleep, not spin: the workers of one split model compute one
    after another, and on a shared machine a spinning idle worker slows the busy one.
    """
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(aria.__file__).resolve().parent.parent),
        "OMP_WAIT_POLICY": "PASSIVE",
        "GGML_NO_BACKTRACE": "1",
    }


def start_rpc_worker(
    *,
    log_path: Path,
    threads: int,
    memory_gb: float,
    secrets: Sequence[Path] = (),
    port: int | None = None,
    timeout_s: float = 30.0,
) -> RpcWorker:
    """Start a confined worker on 127.0.0.1 offering ``memory_gb``; wait until it listens.

    ``secrets``: files the worker must be unable to open once confined (the node's
    identity key); it refuses to serve otherwise.

    Raises:
        ConfigError: reported by the worker (bad endpoint, threads or offer).
        BackendUnavailable: it could not confine itself, died, or did not listen within
            ``timeout_s``.
    """
    endpoint = f"{LOOPBACK_HOST}:{port or free_loopback_port()}"
    workdir = Path(tempfile.mkdtemp(prefix="aria-rpc-"))
    run_as = unprivileged_ids()
    argv = [
        sys.executable,
        "-m",
        "aria.rpc.worker",
        "--endpoint",
        endpoint,
        "--threads",
        str(threads),
        "--memory-gb",
        str(memory_gb),
        "--workdir",
        str(workdir),
    ]
    if run_as is not None:
        os.chown(workdir, *run_as)
        argv += ["--run-as", f"{run_as[0]}:{run_as[1]}"]
    for secret in secrets:
        argv += ["--secret", str(secret)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _rotate(log_path)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=worker_environment(),
            cwd=workdir,
        )
    deadline = time.monotonic() + timeout_s
    try:
        ready = _read_ready(process, log_path, deadline)
        _wait_listening(process, ready, log_path, deadline)
    except BaseException:
        process.kill()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        assert process.stdout is not None
        process.stdout.close()  # only the ready line is ever read from it
    return RpcWorker(ready=ready, process=process, log_path=log_path, workdir=workdir)


_LOG_KEEP_BYTES = 4 * 1024**2


def _rotate(log_path: Path) -> None:
    """Keep one previous log: a worker's log never grows past a few MiB per start."""
    try:
        if log_path.stat().st_size > _LOG_KEEP_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
    except FileNotFoundError:
        pass


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
    by_code: dict[int, type[AriaError]] = {ConfigError.exit_code: ConfigError}
    raise by_code.get(code, BackendUnavailable)(f"the RPC worker stopped: {message}")
