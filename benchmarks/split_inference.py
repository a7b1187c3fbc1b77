"""Split inference on loopback: tokens/s local vs split over 2 and 3 RPC workers.

Everything runs the product path: the dispatcher starts an ``aria.backends`` worker
process per configuration (the orchestrator, for split ones), RPC workers are
``python -m aria.rpc.worker`` processes on 127.0.0.1, placement comes from the planner
(all blocks on the workers, ``max_local_layers=0``).

The machine this runs on may be shared, so every split configuration is measured
*paired*: a local backend stays loaded next to it and the two generate in alternation
(local, split, local, split, ...); each ratio compares medians from the same minutes.
Per configuration:

* load time (backend spawn + model load + health check), TTFT and decode tok/s
  (median of ``--reps`` greedy generations of ``--tokens`` tokens);
* for ``*-relayed`` configurations every worker is reached through an
  :class:`aria.split.Relay` (the shape of the libp2p tunnel) that counts bytes at load
  time and per generated token (decode phase only), and round trips;
* ``*-filtered`` configurations add, inside that relay, the ggml-rpc filter a lender runs
  on every borrowed session (:class:`aria.rpc.filter.RpcFilter`). Filtered and
  unfiltered relays alternate over ``--rounds`` rounds in the same run, and the filter's
  cost is the ratio of their median decode rates (and of their paired ratios to local).

A local backend with ``--local-threads`` (default 2) is measured once more, alone.
Prints a table and writes ``benchmarks/results/split_inference.json``.

    python benchmarks/split_inference.py [--model PATH] [--tokens 64] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from aria.backends import Dispatcher, DoneEvent, GenerationJob, Lease, Limits, WorkerLaunch
from aria.catalog import ModelId
from aria.p2p.transport.guarded import guarded
from aria.p2p.transport.relay import Relay, RelayStats, TcpFarSide
from aria.rpc import RpcWorker, measure_rtt, start_rpc_worker
from aria.rpc.filter import FilterLimits, RpcFilter
from aria.rpc.ggml_rpc import parse_endpoint
from aria.split import (
    Candidate,
    LocalNode,
    ModelLayout,
    PlanPolicy,
    SplitModel,
    candidate_from_worker,
    read_layout,
)

RESULTS = Path(__file__).resolve().parent / "results" / "split_inference.json"
DEV_COPY = Path("/work/models/SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPT = (
    "<|im_start|>user\nWrite a long, detailed story about a lighthouse keeper who finds a "
    "message in a bottle.<|im_end|>\n<|im_start|>assistant\n"
)
GIB = 1024**3


@dataclass
class Run:
    """One configuration's measurements (and its paired local samples)."""

    name: str
    workers: int
    load_s: float = 0.0
    ttft_s: list[float] = field(default_factory=list)
    decode_tok_s: list[float] = field(default_factory=list)
    local_tok_s: list[float] = field(default_factory=list)
    load_bytes: int | None = None
    bytes_per_token: list[float] = field(default_factory=list)
    round_trips_per_token: list[float] = field(default_factory=list)
    placement: list[str] = field(default_factory=list)
    text: str = ""

    def summary(self) -> dict[str, Any]:
        tok_s = statistics.median(self.decode_tok_s)
        out: dict[str, Any] = {
            "workers": self.workers,
            "load_s": round(self.load_s, 3),
            "ttft_ms_median": round(1000 * statistics.median(self.ttft_s), 1),
            "decode_tok_s_median": round(tok_s, 2),
            "decode_tok_s_samples": [round(x, 2) for x in self.decode_tok_s],
        }
        if self.local_tok_s:
            local = statistics.median(self.local_tok_s)
            out["paired_local_tok_s_median"] = round(local, 2)
            out["paired_local_tok_s_samples"] = [round(x, 2) for x in self.local_tok_s]
            out["ratio_vs_local"] = round(tok_s / local, 3)
        if self.load_bytes is not None:
            out["load_bytes_over_wire"] = self.load_bytes
            out["bytes_per_token"] = round(statistics.median(self.bytes_per_token))
            out["round_trips_per_token"] = round(statistics.median(self.round_trips_per_token), 2)
        if self.placement:
            out["placement"] = self.placement
        return out


async def sample(lease: Lease, job: GenerationJob, relays: Sequence[RelayStats]) -> dict[str, Any]:
    """One greedy generation: TTFT, decode tok/s and (through relays) bytes and trips."""
    sent = time.perf_counter()
    generation = await lease.generate(job)
    stamps: list[float] = []
    first = (0, 0)
    text = ""
    while not isinstance(event := await generation.next_event(), DoneEvent):
        stamps.append(time.perf_counter())
        text += event.text
        if len(stamps) == 1:
            first = (sum(s.total for s in relays), sum(s.round_trips for s in relays))
    decoded = len(stamps) - 1
    return {
        "ttft_s": stamps[0] - sent,
        "tok_s": decoded / (stamps[-1] - stamps[0]),
        "bytes": (sum(s.total for s in relays) - first[0]) / decoded,
        "trips": (sum(s.round_trips for s in relays) - first[1]) / decoded,
        "text": text,
    }


def record(run: Run, result: dict[str, Any], relays: Sequence[RelayStats]) -> None:
    run.ttft_s.append(result["ttft_s"])
    run.decode_tok_s.append(result["tok_s"])
    run.text = result["text"]
    if relays:
        run.bytes_per_token.append(result["bytes"])
        run.round_trips_per_token.append(result["trips"])


async def measure_split(
    run: Run,
    split: SplitModel,
    d: Dispatcher,
    local: Lease | None,
    job: GenerationJob,
    reps: int,
    relays: Sequence[RelayStats],
) -> Run:
    """Load ``split`` (timed), then alternate local and split generations ``reps`` times."""
    for stats in relays:  # count this configuration's bytes only
        stats.to_far = stats.to_near = stats.round_trips = 0
    started = time.perf_counter()
    async with split.lease(d) as lease:
        run.load_s = time.perf_counter() - started
        run.placement = list(lease.placement.explanation)
        if relays:
            run.load_bytes = sum(stats.total for stats in relays)
        for _ in range(reps):
            if local is not None:
                run.local_tok_s.append((await sample(local, job, ()))["tok_s"])
            record(run, await sample(lease, job, relays), relays)
    return run


def start_workers(count: int, threads: int, root: Path) -> list[RpcWorker]:
    return [
        start_rpc_worker(
            log_path=root / f"worker-{index}" / "rpc-worker.log", threads=threads, memory_gb=2.0
        )
        for index in range(count)
    ]


async def benchmark(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    model = Path(args.model)
    layout = replace(read_layout(model), name=model.stem)
    job = GenerationJob(
        prompt=PROMPT, max_tokens=args.tokens, temperature=0.0, logit_bias={2: -100.0}
    )
    local_launch = WorkerLaunch(model_path=str(model), n_ctx=2048, threads=1)
    orchestrator = replace(local_launch, threads=args.orchestrator_threads)
    workers = start_workers(3, args.worker_threads, root)
    d = Dispatcher(Limits(8 * GIB, 2, 3600), root / "logs")
    runs: list[Run] = []
    try:
        async with anyio.create_task_group() as group, d.running():
            relayed, stats = await _relays(group, workers)
            filtered, filtered_stats = await _relays(group, workers, filtered=True)
            direct = [
                candidate_from_worker(w, peer_id=f"w{i}", rtt_s=measure_rtt(w.endpoint))
                for i, w in enumerate(workers)
            ]
            no_relays: list[RelayStats] = []
            configs = []
            for _ in range(args.rounds):  # alternate: same minutes, same machine load
                configs += [
                    ("split-2-relayed", relayed, stats, 2, args.reps),
                    ("split-2-filtered", filtered, filtered_stats, 2, args.reps),
                ]
            configs += [
                ("split-3-relayed", relayed, stats, 3, args.reps),
                ("split-3-filtered", filtered, filtered_stats, 3, args.reps),
                ("split-2", direct, no_relays, 2, args.reps),
                ("split-3", direct, no_relays, 3, args.reps),
            ]
            local_run = Run("local-1-thread", 0)
            started = time.perf_counter()
            async with d.lease(ModelId(local_run.name), local_launch, GIB) as local:
                local_run.load_s = time.perf_counter() - started
                merged: dict[str, Run] = {}
                for name, peers, counters, n, reps in configs:
                    split = _split(name, layout, orchestrator, peers[:n], n, args)
                    run = await measure_split(
                        Run(name, n), split, d, local, job, reps, counters[:n]
                    )
                    if name in merged:  # a later round of the same configuration
                        _absorb(merged[name], run)
                    else:
                        merged[name] = run
                        runs.append(run)
                record(local_run, await sample(local, job, ()), ())
            alone = Run(f"local-{args.local_threads}-thread-alone", 0)
            launch = replace(local_launch, threads=args.local_threads)
            started = time.perf_counter()
            async with d.lease(ModelId(alone.name), launch, GIB) as lease:
                alone.load_s = time.perf_counter() - started
                for _ in range(args.reps):
                    record(alone, await sample(lease, job, ()), ())
            runs += [local_run, alone]
            group.cancel_scope.cancel()
    finally:
        for worker in workers:
            worker.stop()
    results = {r.name: r.summary() for r in runs}
    return {
        "model": str(model),
        "tokens": args.tokens,
        "reps": args.reps,
        "rounds": args.rounds,
        "filter_cost": _filter_cost(results),
        "threads": {
            "paired_local": 1,
            "orchestrator": args.orchestrator_threads,
            "worker": args.worker_threads,
        },
        "cpu_count": os.cpu_count(),
        "same_text_as_local": {r.name: r.text == local_run.text for r in runs},
        "results": results,
    }


def _absorb(into: Run, more: Run) -> None:
    for name in (
        "ttft_s",
        "decode_tok_s",
        "local_tok_s",
        "bytes_per_token",
        "round_trips_per_token",
    ):
        getattr(into, name).extend(getattr(more, name))


def _filter_cost(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The filter's cost on decode speed, per worker count: 1 - filtered / unfiltered."""
    cost: dict[str, Any] = {}
    for n in (2, 3):
        plain, guarded = results.get(f"split-{n}-relayed"), results.get(f"split-{n}-filtered")
        if not plain or not guarded:
            continue
        raw = guarded["decode_tok_s_median"] / plain["decode_tok_s_median"]
        paired = guarded["ratio_vs_local"] / plain["ratio_vs_local"]
        cost[f"split-{n}"] = {
            "tok_s_ratio_filtered_over_unfiltered": round(raw, 4),
            "paired_ratio_filtered_over_unfiltered": round(paired, 4),
            "cost_percent": round(100 * (1 - paired), 2),
        }
    return cost


async def _relays(
    group: anyio.abc.TaskGroup, workers: Sequence[RpcWorker], *, filtered: bool = False
) -> tuple[list[Candidate], list[RelayStats]]:
    candidates, stats = [], []
    for index, worker in enumerate(workers):
        offer = worker.ready.offered_bytes
        far = TcpFarSide(*parse_endpoint(worker.endpoint))
        relay = (
            Relay(far, join=guarded(lambda offer=offer: RpcFilter(FilterLimits(offer))))
            if filtered
            else Relay(far)
        )
        port = await group.start(relay.serve)
        stats.append(relay.stats)
        endpoint = f"127.0.0.1:{port}"
        ready = worker.ready
        candidates.append(
            Candidate(
                f"w{index}", endpoint, ready.offered_bytes, ready.threads, measure_rtt(endpoint)
            )
        )
    return candidates, stats


def _split(
    name: str,
    layout: ModelLayout,
    launch: WorkerLaunch,
    peers: list[Candidate],
    n: int,
    args: argparse.Namespace,
) -> SplitModel:
    return SplitModel(
        model_id=ModelId(name),
        layout=layout,
        base_launch=launch,
        local=LocalNode(GIB, args.orchestrator_threads),
        candidates=lambda: peers,
        policy=PlanPolicy(min_peers=n, max_local_layers=0),
    )


def _print(report: dict[str, Any]) -> None:
    print(
        f"{'configuration':28} {'load s':>7} {'TTFT ms':>8} {'tok/s':>7} {'local':>7} "
        f"{'ratio':>6} {'load MB':>8} {'B/token':>8} {'RT/tok':>6}"
    )
    for name, r in report["results"].items():
        load_mb = f"{r['load_bytes_over_wire'] / 1e6:.1f}" if "load_bytes_over_wire" in r else "-"
        print(
            f"{name:28} {r['load_s']:7.2f} {r['ttft_ms_median']:8.1f} "
            f"{r['decode_tok_s_median']:7.1f} {r.get('paired_local_tok_s_median', '-')!s:>7} "
            f"{r.get('ratio_vs_local', '-')!s:>6} {load_mb:>8} "
            f"{r.get('bytes_per_token', '-')!s:>8} {r.get('round_trips_per_token', '-')!s:>6}"
        )
    print("same greedy text as local:", report["same_text_as_local"])
    print("filter cost:", report["filter_cost"])


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEV_COPY), help="GGUF file to split")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="relayed/filtered alternations")
    parser.add_argument("--local-threads", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=1)
    parser.add_argument("--orchestrator-threads", type=int, default=1)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="aria-split-bench-") as tmp:
        report = anyio.run(benchmark, args, Path(tmp), backend="trio")
    report["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    report["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report["cpu"] = _cpu_model()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
