"""Is an RPC worker alive, how much memory does it have, and how far away is it?

ggml-rpc aborts the calling process when a server cannot be reached and blocks while
the server is busy with another client (a worker serves one orchestrator at a time),
so the protocol-level check runs in a throw-away child process with a time-out:
``python -m aria.rpc.probe ENDPOINT`` prints the device memory as JSON. A worker
that answers is alive and free; one that refuses, aborts the child or stays silent
is dead or busy, and either way cannot take a model now.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aria.errors import AriaError, BackendUnavailable
from aria.rpc.ggml_rpc import parse_endpoint, remote_device_memory

__all__ = ["WorkerProbe", "measure_rtt", "probe_worker", "probe_workers"]


@dataclass(frozen=True)
class WorkerProbe:
    """A worker that answered the ggml-rpc handshake and a memory query."""

    endpoint: str
    free_bytes: int
    total_bytes: int
    rtt_s: float


def measure_rtt(endpoint: str, *, timeout_s: float = 2.0) -> float:
    """One TCP connect: one round trip (the kernel answers the SYN).

    A single sample on purpose: a ggml-rpc server listens with a backlog of one and
    serves connections one after another, so a burst of connects would be dropped.

    Raises:
        BackendUnavailable: nothing listens there.
    """
    host, port = parse_endpoint(endpoint)
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return time.perf_counter() - start
    except OSError as exc:
        raise BackendUnavailable(f"no RPC worker answers at {endpoint}: {exc}") from None


def probe_worker(endpoint: str, *, timeout_s: float = 5.0) -> WorkerProbe:
    """Handshake with the worker and read its memory, in a child process.

    Raises:
        ConfigError: ``endpoint`` is not host:port.
        BackendUnavailable: the worker is gone, is not a compatible ggml-rpc server, or
        is busy serving another orchestrator.
    """
    parse_endpoint(endpoint)
    rtt = measure_rtt(endpoint)
    try:
        child = subprocess.run(
            [sys.executable, "-m", "aria.rpc.probe", endpoint],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(
            f"the RPC worker at {endpoint} did not answer within {timeout_s:.0f} s "
            "(busy with another orchestrator, or hung)"
        ) from None
    if child.returncode != 0:
        lines = child.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise BackendUnavailable(f"the RPC worker at {endpoint} failed a handshake: {lines[-1]}")
    data = json.loads(child.stdout)
    return WorkerProbe(endpoint, int(data["free_bytes"]), int(data["total_bytes"]), rtt)


def probe_workers(
    endpoints: Sequence[str], *, timeout_s: float = 5.0
) -> dict[str, WorkerProbe | AriaError]:
    """Probe several workers at once; each result is the probe or why it failed."""

    def one(endpoint: str) -> WorkerProbe | AriaError:
        try:
            return probe_worker(endpoint, timeout_s=timeout_s)
        except AriaError as exc:
            return exc

    if not endpoints:
        return {}
    with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
        return dict(zip(endpoints, pool.map(one, endpoints), strict=True))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m aria.rpc.probe HOST:PORT", file=sys.stderr)
        return 2
    memory = remote_device_memory(args[0])
    print(json.dumps({"free_bytes": memory.free_bytes, "total_bytes": memory.total_bytes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
