"""Flash attention on or off for the batching engine: decode speed, measured side by side.

Every slot of a batching worker keeps its last request's tokens for prompt reuse, so the
unified KV cache fills with cells of *idle* slots. Plain attention computes over every
cell up to the highest one in use and masks the others; llama.cpp's CPU flash attention
skips masked cells. This runs ARIA's engine in this process, both ways alternately,
for 1 and 8 streams, with the cache empty and with ``--cached`` cells held by idle
slots. Writes ``benchmarks/results/flash_attention.json``.

    python benchmarks/flash_attention.py [--model PATH] [--reps 3]
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
from aria.backends.engine import Piece
from aria.backends.llama_engine import LlamaEngine

RESULTS = Path(__file__).resolve().parent / "results" / "flash_attention.json"
ASK = "Write a long story about {}."
TOPICS = ["the sea", "bread", "owls", "tea", "rain", "maps", "snow", "salt", "kites"]


def decode_rate(engine: LlamaEngine, streams: int, tokens: int, first_id: int) -> float:
    """Aggregate decode tok/s of ``streams`` greedy requests decoded together."""
    for n in range(streams):
        job = GenerationJob(
            messages=({"role": "user", "content": ASK.format(TOPICS[n])},),
            max_tokens=tokens,
            temperature=0.0,
            logit_bias={0: -100.0, 2: -100.0},
        )
        engine.submit(first_id + n, job)
    stamps: list[float] = []
    while engine.has_work():
        events = engine.step()
        if any(isinstance(e, Piece) for e in events):
            stamps.append(time.perf_counter())
    # From the first step where every stream decodes to the last one.
    decode_steps = stamps[1:]
    return streams * (len(decode_steps) - 1) / (decode_steps[-1] - decode_steps[0])


def fill_idle_slots(engine: LlamaEngine, cells: int, first_id: int, slots: int) -> None:
    """Leave about ``cells`` tokens cached in ``slots`` idle slots (long prompts)."""
    words = max(1, cells // slots // 2)  # "wNN" is about two tokens
    for n in range(slots):
        prompt = " ".join(f"w{(n * 31 + i) % 97}" for i in range(words))
        engine.submit(first_id + n, GenerationJob(prompt=prompt, max_tokens=1, temperature=0.0))
    while engine.has_work():
        engine.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--cached", type=int, default=3000)
    args = parser.parse_args()
    model = find_model(args.model)
    uptime_before = uptime_load()
    # Enough slots that no run ever takes one of the 8 filled ones (least recently used
    # first: the runs take never-used slots before those).
    slots = 8 + 2 * args.reps * 9
    engines = {
        flash: LlamaEngine(
            WorkerLaunch(
                model_path=str(model),
                n_ctx=1024,
                threads=args.threads,
                parallel=slots,
                flash_attn=flash,
            )
        )
        for flash in (False, True)
    }
    rates: dict[str, list[float]] = {}
    ids = 1
    try:
        for cached in (False, True):
            if cached:
                for engine in engines.values():
                    fill_idle_slots(engine, args.cached, ids, 8)
                    ids += 8
            for rep in range(args.reps):
                for flash in (False, True) if rep % 2 == 0 else (True, False):
                    for streams in (1, 8):
                        rate = decode_rate(engines[flash], streams, args.tokens, ids)
                        ids += streams
                        key = f"flash_attn={flash} streams={streams} idle_cache={cached}"
                        rates.setdefault(key, []).append(rate)
                        time.sleep(0.3)
    finally:
        for engine in engines.values():
            engine.close()
    results: dict[str, Any] = {key: statistics.median(values) for key, values in rates.items()}
    report = {
        "model": str(model),
        "cpu": cpu_model(),
        "uptime_before": uptime_before,
        "uptime_after": uptime_load(),
        "threads": args.threads,
        "cached_cells": args.cached,
        "tok_s_median": results,
        "samples": rates,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{model.name}, {cpu_model()}, {uptime_before} -> {report['uptime_after']}")
    for key in sorted(results):
        print(f"  {key:<45} {results[key]:7.1f} tok/s")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
