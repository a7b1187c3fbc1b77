"""Time one loaded model: prompt processing and generation measured separately.

A run evaluates exactly P prompt tokens (one timed phase: prompt tok/s and time to first
token), then G single-token decode steps with greedy choice (the other timed phase:
generation tok/s and energy per generated token). Warm-up runs are discarded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from aria.bench.runner import LlamaRunner
from aria.bench.stats import Summary, summarize
from aria.energy import EnergyMeter, EnergyReading

__all__ = ["RunSample", "ThreadResult", "measure_threads"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class RunSample:
    prompt_tokens: int
    gen_tokens: int
    prompt_s: float
    ttft_s: float  # prompt evaluated and first token chosen
    decode_s: float
    energy: EnergyReading  # decode phase only
    rss_bytes: int  # resident set size right after the run

    @property
    def prompt_tok_s(self) -> float:
        return self.prompt_tokens / self.prompt_s

    @property
    def gen_tok_s(self) -> float:
        return self.gen_tokens / self.decode_s

    @property
    def joules_per_token(self) -> float:
        return self.energy.joules / self.gen_tokens


@dataclass(frozen=True)
class ThreadResult:
    """R measured runs of one model at one thread count."""

    threads: int
    samples: tuple[RunSample, ...]

    @property
    def prompt_tok_s(self) -> Summary:
        return summarize([s.prompt_tok_s for s in self.samples])

    @property
    def gen_tok_s(self) -> Summary:
        return summarize([s.gen_tok_s for s in self.samples])

    @property
    def ttft_ms(self) -> Summary:
        return summarize([s.ttft_s * 1000 for s in self.samples])

    @property
    def joules_per_token(self) -> Summary:
        return summarize([s.joules_per_token for s in self.samples])

    @property
    def peak_rss_bytes(self) -> int:
        return max(s.rss_bytes for s in self.samples)

    def as_dict(self) -> dict[str, object]:
        return {
            "threads": self.threads,
            "prompt_tok_s": self.prompt_tok_s.as_dict(),
            "gen_tok_s": self.gen_tok_s.as_dict(),
            "ttft_ms": self.ttft_ms.as_dict(),
            "energy_j_per_token": self.joules_per_token.as_dict(),
            "peak_rss_mib": self.peak_rss_bytes / _MIB,
        }


def measure_threads(
    runner: LlamaRunner,
    *,
    threads: int,
    prompt: Sequence[int],
    gen_tokens: int,
    runs: int,
    warmup: int,
    meter: EnergyMeter,
    on_run: Callable[[], None] = lambda: None,
) -> ThreadResult:
    """Warm up, then measure ``runs`` runs at ``threads``; ``on_run`` ticks after each run."""
    runner.set_threads(threads)
    for _ in range(warmup):
        _run_once(runner, prompt, gen_tokens, meter)
        on_run()
    samples = []
    for _ in range(runs):
        samples.append(_run_once(runner, prompt, gen_tokens, meter))
        on_run()
    return ThreadResult(threads, tuple(samples))


def _run_once(
    runner: LlamaRunner, prompt: Sequence[int], gen_tokens: int, meter: EnergyMeter
) -> RunSample:
    runner.reset()
    start = time.perf_counter()
    runner.prefill(prompt)
    prompt_s = time.perf_counter() - start
    token = runner.next_token()
    ttft = time.perf_counter() - start
    meter.start()
    decode_start = time.perf_counter()
    for _ in range(gen_tokens):
        token = runner.step(token)
    decode_s = time.perf_counter() - decode_start
    energy = meter.stop()
    return RunSample(
        prompt_tokens=len(prompt),
        gen_tokens=gen_tokens,
        prompt_s=prompt_s,
        ttft_s=ttft,
        decode_s=decode_s,
        energy=energy,
        rss_bytes=psutil.Process().memory_info().rss,
    )
