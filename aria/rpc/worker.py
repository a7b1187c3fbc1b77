"""An RPC worker process: lends this machine's CPU to a split model over ggml-rpc.

    python -m aria.rpc.worker --endpoint 127.0.0.1:PORT --memory-gb X --workdir DIR
                                [--threads N] [--run-as UID:GID] [--secret PATH ...]

Everything comes from argv: the worker reads no configuration and is started with an
empty environment, so it needs nothing from ``ARIA_HOME``. Whether the operator lends
compute at all (``consent.share_rpc``) is the node's decision before it starts one.

It refuses any address but 127.0.0.1 (peers reach it only through the libp2p tunnel
and its protocol filter). Before serving it confines itself
(:mod:`aria.rpc.sandbox`: private working directory, file-size and open-file
limits, Landlock, an unprivileged uid when started as root), then checks that it can
no longer open any ``--secret`` file (the node passes its identity key): if it can,
it refuses to serve. It then prints one JSON line on stdout, :class:`WorkerReady`,
with the memory it offers: the operator's offer or the device's free memory, whichever
is lower. The offer is also enforced: the data-segment limit (``RLIMIT_DATA``) is what
the process uses now plus the offer, so a client asking for more gets a failed
allocation, not the operator's last RAM. Everything ggml-rpc prints goes to stderr.
There is no tensor cache: a peer's weights are never written to disk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from aria.errors import AriaError, BackendUnavailable, ConfigError
from aria.rpc.ggml_rpc import cpu_device_memory, parse_endpoint, require_loopback, serve_cpu
from aria.rpc.sandbox import SandboxSpec, can_open, enter_sandbox

__all__ = ["WorkerReady", "main", "offered_bytes"]

_GIB = 1024**3
# Room above the offer for ggml's bookkeeping and each compute thread's stack (measured:
# a loaded worker's data segment grows by what llama.cpp reports for its buffers).
_BASE_SLACK_BYTES = 32 * 1024**2
_THREAD_SLACK_BYTES = 8 * 1024**2


@dataclass(frozen=True)
class WorkerReady:
    """What a worker announces before it starts serving (one JSON line on stdout)."""

    endpoint: str
    offered_bytes: int
    free_bytes: int
    total_bytes: int
    threads: int
    pid: int
    uid: int = -1
    landlock_abi: int = 0

    def to_line(self) -> bytes:
        return json.dumps({"ev": "ready", **asdict(self)}).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> WorkerReady:
        data = json.loads(line)
        if not isinstance(data, dict) or data.pop("ev", None) != "ready":
            raise ValueError(f"not a worker ready line: {line[:120]!r}")
        return cls(**data)


def offered_bytes(offer_gb: float, free_bytes: int) -> int:
    """The operator's offer, capped by what the device really has free."""
    return max(0, min(int(offer_gb * _GIB), free_bytes))


def _data_usage_bytes() -> int:
    """This process's data segment now (``VmData``), the base the limit builds on."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return 0


def _enforce(offer: int, threads: int) -> None:
    limit = _data_usage_bytes() + offer + _BASE_SLACK_BYTES + threads * _THREAD_SLACK_BYTES
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))  # the worker cannot raise it


def _ids(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    return int(uid), int(gid or uid)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aria.rpc.worker")
    parser.add_argument("--endpoint", required=True, help="127.0.0.1:PORT to listen on")
    parser.add_argument("--threads", type=int, default=1, help="compute threads")
    parser.add_argument("--memory-gb", type=float, required=True, help="memory offered (GB)")
    parser.add_argument("--workdir", type=Path, required=True, help="private working directory")
    parser.add_argument("--run-as", type=_ids, default=None, help="UID:GID to serve as")
    parser.add_argument(
        "--secret", type=Path, action="append", default=[], help="a file it must not open"
    )
    return parser.parse_args(argv)


def run(argv: list[str]) -> None:
    """Validate, confine, announce, serve; returns only by raising.

    Raises:
        ConfigError: bad endpoint, thread count or offer.
        BackendUnavailable: confinement failed, a ``--secret`` file is still readable, or
            the server could not listen.
    """
    args = _parse(argv)
    require_loopback(args.endpoint)
    if args.threads < 1:
        raise ConfigError(f"an RPC worker needs at least one thread, not {args.threads}")
    if not args.memory_gb > 0:
        raise ConfigError(
            f"the memory offered must be a positive number of GB, not {args.memory_gb}"
        )
    memory = cpu_device_memory()  # loads every native library before confinement
    # ggml reports all of RAM as free for the CPU device; what is really available is lower.
    free = min(memory.free_bytes, psutil.virtual_memory().available)
    offer = offered_bytes(args.memory_gb, free)
    _enforce(offer, args.threads)
    spec = SandboxSpec(args.workdir, parse_endpoint(args.endpoint)[1], run_as=args.run_as)
    try:
        report = enter_sandbox(spec)
    except OSError as exc:
        raise BackendUnavailable(f"the RPC worker could not confine itself ({exc})") from None
    readable = [str(path) for path in args.secret if can_open(path)]
    if readable:
        raise BackendUnavailable(
            "the RPC worker could still open " + ", ".join(readable) + " after confinement "
            "(no Landlock on this system and not started as root); it does not lend compute "
            "without isolation"
        )
    protocol = os.dup(1)
    os.dup2(2, 1)  # ggml-rpc prints its banner and connection log to stdout
    sys.stdout = sys.stderr
    ready = WorkerReady(
        endpoint=args.endpoint,
        offered_bytes=offer,
        free_bytes=free,
        total_bytes=memory.total_bytes,
        threads=args.threads,
        pid=os.getpid(),
        uid=report.uid,
        landlock_abi=report.landlock_abi,
    )
    os.write(protocol, ready.to_line())
    os.close(protocol)
    serve_cpu(args.endpoint, threads=args.threads)


def main(argv: list[str] | None = None) -> int:
    try:
        run(sys.argv[1:] if argv is None else argv)
    except AriaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
