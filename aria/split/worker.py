"""An RPC worker process: lends this machine's CPU to a split model over ggml-rpc.

    python -m aria.split.worker --endpoint 127.0.0.1:PORT [--threads N]
                                [--cache-dir DIR] [--memory-gb X]

It refuses any address but 127.0.0.1 (peers reach it only through the libp2p tunnel),
and refuses to start unless the operator consented (``consent.share_rpc``). Before
serving it prints one JSON line on stdout, :class:`WorkerReady`, with the memory it
offers: the operator's offer (``--memory-gb``, default ``consent.rpc_memory_gb``) or the
device's free memory, whichever is lower. The offer is also enforced: the process's
data-segment limit (``RLIMIT_DATA``) is set to what it uses now plus the offer, so an
orchestrator asking for more gets a failed allocation, not the operator's last RAM.
Everything ggml-rpc prints goes to stderr.
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

from aria.config import AriaPaths, load_settings
from aria.errors import AriaError, ConfigError, ConsentRefused
from aria.split.ggml_rpc import cpu_device_memory, require_loopback, serve_cpu

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
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aria.split.worker")
    parser.add_argument("--endpoint", required=True, help="127.0.0.1:PORT to listen on")
    parser.add_argument("--threads", type=int, default=None, help="compute threads")
    parser.add_argument("--cache-dir", type=Path, default=None, help="tensor cache directory")
    parser.add_argument("--memory-gb", type=float, default=None, help="memory offered (GB)")
    return parser.parse_args(argv)


def run(argv: list[str]) -> None:
    """Validate, announce, serve; returns only by raising.

    Raises:
        ConfigError: bad endpoint or thread count.
        ConsentRefused: the operator has not enabled ``consent.share_rpc``.
        BackendUnavailable: the server could not listen.
    """
    args = _parse(argv)
    require_loopback(args.endpoint)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"an RPC worker needs at least one thread, not {args.threads}")
    if args.memory_gb is not None and not args.memory_gb > 0:
        raise ConfigError(
            f"the memory offered must be a positive number of GB, not {args.memory_gb}"
        )
    settings = load_settings(AriaPaths.from_env())
    if not settings.consent.share_rpc:
        raise ConsentRefused(
            "this node does not lend compute for split inference "
            "(enable consent.share_rpc to start an RPC worker)"
        )
    threads = args.threads or settings.inference.threads or os.cpu_count() or 1
    # Idle OpenMP threads must sleep, not spin: the workers of one split model compute
    # one after another, and on a shared machine a spinning idle worker slows the busy one.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    memory = cpu_device_memory()
    # ggml reports all of RAM as free for the CPU device; what is really available is lower.
    free = min(memory.free_bytes, psutil.virtual_memory().available)
    offer_gb = settings.consent.rpc_memory_gb if args.memory_gb is None else args.memory_gb
    offer = offered_bytes(offer_gb, free)
    if args.cache_dir is not None:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
    _enforce(offer, threads)
    protocol = os.dup(1)
    os.dup2(2, 1)  # ggml-rpc prints its banner and connection log to stdout
    sys.stdout = sys.stderr
    ready = WorkerReady(
        endpoint=args.endpoint,
        offered_bytes=offer,
        free_bytes=free,
        total_bytes=memory.total_bytes,
        threads=threads,
        pid=os.getpid(),
    )
    os.write(protocol, ready.to_line())
    os.close(protocol)
    serve_cpu(args.endpoint, threads=threads, cache_dir=args.cache_dir)


def main(argv: list[str] | None = None) -> int:
    try:
        run(sys.argv[1:] if argv is None else argv)
    except AriaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
