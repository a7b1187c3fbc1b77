"""What recording costs: a request's time with the ledger on vs off, in the same run.

The default model (SmolLM2-135M-Instruct, Q4_1), one node in this process, the same
greedy request every time (``--max-tokens`` tokens). Requests alternate ledger off / on
in ABBA order so machine noise hits both sides; "on" adds exactly the receipt: hashing,
signing and the fsynced SQLite append. That time is also measured directly (the
recorder timed inside each "on" request), which a loaded machine cannot blur. The
append alone is measured too (a burst into a fresh ledger).

    python benchmarks/ledger_overhead.py [--model PATH] [--pairs 20] [--max-tokens 64]

Prints a table and writes ``benchmarks/results/ledger_overhead.json``. The target is an
overhead of at most 2 % of request time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from aria.backends import GenerationJob
from aria.cli.recording import open_records
from aria.config import AriaPaths, AriaSettings
from aria.hardware import detect
from aria.ledger import (
    Energy,
    Ledger,
    ModelRef,
    Receipt,
    Recorder,
    RunPlace,
    SignedEntry,
    sha256_hex,
)
from aria.node import Node
from aria.signing import NodeKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_vs_inprocess import find_model  # the same model lookup

RESULTS = Path(__file__).resolve().parent / "results" / "ledger_overhead.json"
JOB = GenerationJob(
    messages=({"role": "user", "content": "Write a short story about a lighthouse keeper."},),
    temperature=0.0,
)


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "load_before": os.getloadavg()}


async def _request(node: Node, model_id: str, max_tokens: int) -> tuple[float, int]:
    job = GenerationJob(messages=JOB.messages, temperature=0.0, max_tokens=max_tokens)
    started = time.perf_counter()
    tokens = 0
    async with await node.generate(job, model_id) as served:
        async for event in served.events():
            if not hasattr(event, "text"):
                tokens = event.completion_tokens  # type: ignore[union-attr]
    return time.perf_counter() - started, tokens


class _TimedRecorder:
    """The node's recorder, timed: what recording adds to each request, measured directly."""

    def __init__(self, inner: Recorder) -> None:
        self.inner = inner
        self.samples: list[float] = []

    def record(self, receipt: Receipt) -> SignedEntry:
        started = time.perf_counter()
        try:
            return self.inner.record(receipt)
        finally:
            self.samples.append(time.perf_counter() - started)


async def _overhead(node: Node, model_id: str, pairs: int, max_tokens: int) -> dict[str, Any]:
    assert node.recorder is not None
    recorder = _TimedRecorder(node.recorder)
    times: dict[str, list[float]] = {"off": [], "on": []}
    await _request(node, model_id, max_tokens)  # load the model, warm the caches
    tokens = 0
    for index in range(pairs):
        order = ("off", "on") if index % 2 == 0 else ("on", "off")
        for mode in order:
            node.recorder = recorder if mode == "on" else None
            elapsed, tokens = await _request(node, model_id, max_tokens)
            times[mode].append(elapsed)
    node.recorder = recorder
    record = statistics.fmean(recorder.samples[-pairs:])
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    mean_off, mean_on = statistics.fmean(times["off"]), statistics.fmean(times["on"])
    return {
        "pairs": pairs,
        "completion_tokens": tokens,
        "median_s": {"off": off, "on": on},
        "mean_s": {"off": mean_off, "on": mean_on},
        "overhead_pct_median": 100 * (on - off) / off,
        "overhead_pct_mean": 100 * (mean_on - mean_off) / mean_off,
        "record_ms_mean": 1000 * record,
        "overhead_pct_direct": 100 * record / mean_on,
        "samples_s": times,
    }


def _append_cost(folder: Path, count: int = 300) -> dict[str, float]:
    key = NodeKey.generate()
    receipt = Receipt(
        id="ab" * 16,
        role="local",
        origin="api",
        model=ModelRef(id="bench-model", sha256="cd" * 32),
        ran_on=RunPlace(where="local"),
        prompt_tokens=30,
        completion_tokens=64,
        finish="stop",
        started_ms=1,
        duration_ms=900,
        energy=Energy(millijoules=1234, source="estimate", label="ESTIMATE"),
        prompt_sha256=sha256_hex("p"),
        output_sha256=sha256_hex("o"),
    )
    samples = []
    with Ledger.open(folder, key) as ledger:
        for _ in range(count):
            started = time.perf_counter()
            ledger.append("inference", receipt)
            samples.append(time.perf_counter() - started)
    return {
        "appends": count,
        "median_ms": 1000 * statistics.median(samples),
        "p95_ms": 1000 * sorted(samples)[int(0.95 * count)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the installed SmolLM2)")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    model = find_model(args.model)
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="aria-ledger-bench-") as scratch:
        paths = AriaPaths(Path(scratch) / "home")
        paths.ensure()
        settings = AriaSettings()
        settings.inference.threads = args.threads
        node = Node.create(
            paths, settings, hardware=detect(), recorder=open_records(paths, settings).recorder
        )
        model_id = node.store.import_file(model).model_id

        async def run() -> dict[str, Any]:
            async with node.running():
                return await _overhead(node, model_id, args.pairs, args.max_tokens)

        overhead = trio.run(run)
        append = _append_cost(Path(scratch) / "burst")
    machine["load_after"] = os.getloadavg()
    report = {
        "benchmark": "ledger_overhead",
        "model": str(model),
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "machine": machine,
        "overhead": overhead,
        "append": append,
        "target_pct": 2.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"model {model.name}, {args.pairs} pairs, {overhead['completion_tokens']} tokens each")
    median = overhead["median_s"]
    print(f"request time median off {median['off']:.3f} s, on {median['on']:.3f} s")
    print(
        f"ledger overhead: {overhead['overhead_pct_direct']:.3f} % measured directly "
        f"({overhead['record_ms_mean']:.2f} ms per receipt); on vs off: "
        f"{overhead['overhead_pct_median']:+.2f} % (median), "
        f"{overhead['overhead_pct_mean']:+.2f} % (mean); target <= 2 %"
    )
    print(
        f"one append (hash, sign, fsynced commit): {append['median_ms']:.2f} ms median, "
        f"{append['p95_ms']:.2f} ms p95"
    )
    print(f"CPU {machine['cpu']}; load {machine['load_before']} -> {machine['load_after']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
