"""Does a sequence's greedy text depend on what else is in the batch? Measured, not assumed.

llama.cpp promises bit-identical greedy output for the same schedule only: batched
kernels sum in other orders (attention over a unified KV cache sees other sequences'
cells as masked lanes; flash attention switches kernels with the batch's token count),
so the last bits of a logit can change and, where two candidates nearly tie, the text.
This benchmark runs ARIA's batching engine in this process over ``--prompts`` chat
prompts, greedy, three ways:

* ``solo``       -- each prompt alone in the engine, one after another;
* ``solo again`` -- the same, a second time (the prompt cache now holds other prompts:
                   the baseline of what changes with *no* batching at all);
* ``batched``    -- the prompts in groups of ``--batch`` decoded together.

and reports how many texts differ from the first solo run, and at which token they part,
with flash attention off (ARIA's default) and on. Writes
``benchmarks/results/batch_determinism.json``.

    python benchmarks/batch_determinism.py [--model PATH] [--prompts 128] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from api_vs_inprocess import find_model
from machine import cpu_model, uptime_load

from aria.backends import GenerationJob, WorkerLaunch
from aria.backends.engine import Ended, Failure, Piece
from aria.backends.llama_engine import LlamaEngine

RESULTS = Path(__file__).resolve().parent / "results" / "batch_determinism.json"
ASKS = [
    "Write a short poem about {}.",
    "Explain {} to a child.",
    "List three facts about {}.",
    "Describe {} in one paragraph.",
]
TOPICS = [
    "the sea", "a lighthouse", "bread", "the moon", "trains", "rain", "music", "a garden",
    "winter", "a library", "bees", "the desert", "a violin", "glaciers", "markets", "owls",
    "volcanoes", "paper", "bridges", "tea", "clocks", "forests", "salt", "kites",
    "rivers", "maps", "snow", "candles", "wolves", "bicycles", "coral", "thunder",
]  # fmt: skip


def prompts(count: int, max_tokens: int) -> list[GenerationJob]:
    texts = [ask.format(topic) for topic in TOPICS for ask in ASKS][:count]
    return [
        GenerationJob(
            messages=({"role": "user", "content": text},), temperature=0.0, max_tokens=max_tokens
        )
        for text in texts
    ]


def run(
    engine: LlamaEngine, jobs: list[GenerationJob], group: int, first_id: int
) -> list[list[str]]:
    """Greedy pieces of every job, ``group`` of them decoded together at a time."""
    pieces: dict[int, list[str]] = {}
    for start in range(0, len(jobs), group):
        ids = list(range(first_id + start, first_id + start + min(group, len(jobs) - start)))
        for request_id, job in zip(ids, jobs[start : start + group], strict=False):
            pieces[request_id] = []
            engine.submit(request_id, job)
        while engine.has_work():
            for event in engine.step():
                if isinstance(event, Piece):
                    pieces[event.request_id].append(event.text)
                elif isinstance(event, Failure):
                    raise RuntimeError(f"request {event.request_id} failed: {event.error}")
                elif isinstance(event, Ended):
                    assert event.result.finish_reason in ("stop", "length")
    return [pieces[first_id + n] for n in range(len(jobs))]


def compare(reference: list[list[str]], other: list[list[str]]) -> dict[str, Any]:
    """How many texts differ, and at which piece (about one token each) they part."""
    parted = []
    for ref, out in zip(reference, other, strict=True):
        if "".join(ref) == "".join(out):
            continue
        index = next((i for i, (a, b) in enumerate(zip(ref, out, strict=False)) if a != b), None)
        parted.append(min(len(ref), len(out)) if index is None else index)
    return {
        "prompts": len(reference),
        "differ": len(parted),
        "differ_fraction": len(parted) / len(reference),
        "first_difference_token_median": statistics.median(parted) if parted else None,
        "first_difference_tokens": sorted(parted),
    }


def measure(model: Path, args: argparse.Namespace, flash_attn: bool) -> dict[str, Any]:
    launch = WorkerLaunch(
        model_path=str(model),
        n_ctx=args.n_ctx,
        threads=args.threads,
        parallel=args.batch,
        flash_attn=flash_attn,
    )
    engine = LlamaEngine(launch)
    jobs = prompts(args.prompts, args.max_tokens)
    try:
        started = time.perf_counter()
        solo = run(engine, jobs, 1, 1)
        again = run(engine, jobs, 1, 100_000)
        batched = run(engine, jobs, args.batch, 200_000)
        elapsed = time.perf_counter() - started
    finally:
        engine.close()
    return {
        "flash_attn": flash_attn,
        "seconds": elapsed,
        "solo_again_vs_solo": compare(solo, again),
        "batched_vs_solo": compare(solo, batched),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument(
        "--flash", default="off,on", help="flash attention settings to measure: off, on or both"
    )
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    model = find_model(args.model)
    uptime_before = uptime_load()
    settings = [{"off": False, "on": True}[value] for value in args.flash.split(",")]
    configs = [measure(model, args, flash_attn) for flash_attn in settings]
    report = {
        "model": str(model),
        "cpu": cpu_model(),
        "uptime_before": uptime_before,
        "uptime_after": uptime_load(),
        "prompts": args.prompts,
        "batch": args.batch,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "configs": configs,
        "note": args.note,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{model.name}, {args.prompts} prompts, greedy {args.max_tokens} tokens, {cpu_model()}")
    for config in configs:
        for name in ("solo_again_vs_solo", "batched_vs_solo"):
            result = config[name]
            print(
                f"  flash_attn={config['flash_attn']!s:<5} {name:<18} "
                f"{result['differ']:>3}/{result['prompts']} texts differ "
                f"({100 * result['differ_fraction']:.0f} %), first difference at token "
                f"{result['first_difference_token_median']} (median)"
            )
    print(f"{uptime_before} -> {report['uptime_after']}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
