"""Run a whole benchmark: bandwidth once, each model loaded once, every requested mode.

The CLI (and the scripts in ``benchmarks/``) build a :class:`BenchPlan`, call
:func:`run_bench` with a progress callback, and get a :class:`BenchReport` whose
``as_dict()`` is the JSON kept in ``benchmarks/results/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aria.bench.api_mode import ApiResult, bench_api
from aria.bench.bandwidth import Bandwidth
from aria.bench.footprint import read_footprint
from aria.bench.measure import ThreadResult, measure_threads
from aria.bench.roofline import ModelFootprint, Roofline, decode_roofline
from aria.bench.runner import LlamaRunner, RunnerOptions
from aria.energy import EnergyMeter
from aria.errors import InvalidRequest

__all__ = ["BenchPlan", "BenchReport", "ModelResult", "ModelTarget", "run_bench", "total_steps"]

Progress = Callable[[str], None]  # called once per finished step, with what runs now


@dataclass(frozen=True)
class ModelTarget:
    model_id: str
    path: Path
    threads: tuple[int, ...]  # one count, or the sweep's counts


@dataclass(frozen=True)
class BenchPlan:
    """What to measure; validated on creation so a bad flag fails before any work."""

    models: tuple[ModelTarget, ...]
    prompt_tokens: int = 128
    gen_tokens: int = 64
    runs: int = 3
    warmup: int = 1
    n_batch: int = 512
    repack: bool = True
    use_mmap: bool = True
    use_mlock: bool = False
    api_url: str | None = None
    api_key: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (bool(self.models), "models", "at least one model is needed"),
            (self.prompt_tokens >= 1, "prompt_tokens", "--prompt-tokens must be at least 1"),
            (self.gen_tokens >= 2, "gen_tokens", "--gen-tokens must be at least 2"),
            (self.runs >= 1, "runs", "--runs must be at least 1"),
            (self.warmup >= 0, "warmup", "--warmup cannot be negative"),
            (self.n_batch >= 1, "n_batch", "--batch must be at least 1"),
        ]
        for ok, param, message in checks:
            if not ok:
                raise InvalidRequest(message, param=param)
        if any(t < 1 for m in self.models for t in m.threads) or not all(
            m.threads for m in self.models
        ):
            raise InvalidRequest("thread counts must be at least 1", param="threads")

    @property
    def n_ctx(self) -> int:
        """Context for prompt + generation, rounded up to a multiple of 256."""
        needed = self.prompt_tokens + self.gen_tokens + 1
        return max(256, -(-needed // 256) * 256)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "gen_tokens": self.gen_tokens,
            "runs": self.runs,
            "warmup": self.warmup,
            "n_batch": self.n_batch,
            "repack": self.repack,
            "use_mmap": self.use_mmap,
            "use_mlock": self.use_mlock,
            "api_url": self.api_url,
        }


@dataclass(frozen=True)
class ModelResult:
    target: ModelTarget
    file_bytes: int
    n_params: int
    load_s: float
    options: RunnerOptions
    footprint: ModelFootprint
    by_threads: tuple[ThreadResult, ...]
    roofline: Roofline
    api: ApiResult | None = None

    @property
    def best(self) -> ThreadResult:
        """The thread count with the highest median generation rate."""
        return max(self.by_threads, key=lambda r: r.gen_tok_s.median)

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "model": self.target.model_id,
            "path": str(self.target.path),
            "file_bytes": self.file_bytes,
            "params": self.n_params,
            "load_s": self.load_s,
            "options": {k: v for k, v in self.options.as_dict().items() if k != "threads"},
            "best_threads": best.threads,
            **{k: v for k, v in best.as_dict().items() if k != "threads"},
            "weight_bytes_per_token": self.footprint.weight_bytes_per_token,
            "roofline": self.roofline.as_dict(),
            "thread_sweep": [r.as_dict() for r in self.by_threads],
            "api": self.api.as_dict() if self.api else None,
        }

    def mode_rows(self) -> list[dict[str, Any]]:
        """One row per measured mode (in-process, API streaming) for the comparison table."""
        best = self.best
        rows: list[dict[str, Any]] = [
            {
                "model": self.target.model_id,
                "mode": "in-process",
                "threads": best.threads,
                "prompt_tok_s": best.prompt_tok_s.median,
                "gen_tok_s": best.gen_tok_s.median,
                "ttft_ms": best.ttft_ms.median,
            }
        ]
        if self.api is not None:
            rows.append(
                {
                    "model": self.target.model_id,
                    "mode": "api-streaming",
                    "threads": None,  # the server's own setting
                    "prompt_tok_s": None,  # not separable from HTTP overhead
                    "gen_tok_s": self.api.gen_tok_s.median,
                    "ttft_ms": self.api.ttft_ms.median,
                }
            )
        return rows


@dataclass(frozen=True)
class BenchReport:
    plan: BenchPlan
    machine: dict[str, Any]
    bandwidth: Bandwidth
    energy_method: str
    energy_label: str
    models: tuple[ModelResult, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def mode_rows(self) -> list[dict[str, Any]]:
        return [row for model in self.models for row in model.mode_rows()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "aria-bench",
            "machine": self.machine,
            "notes": list(self.notes),
            "plan": self.plan.as_dict(),
            "memory_bandwidth": self.bandwidth.as_dict(),
            "energy": {"method": self.energy_method, "label": self.energy_label},
            "models": [m.as_dict() for m in self.models],
            "modes": self.mode_rows(),
        }


def total_steps(plan: BenchPlan) -> int:
    """Progress steps: one per (warm-up or measured) run, in every mode."""
    per_run = plan.runs + plan.warmup
    in_process = sum(len(m.threads) * per_run for m in plan.models)
    api = len(plan.models) * per_run if plan.api_url else 0
    return in_process + api


def run_bench(
    plan: BenchPlan,
    *,
    machine: dict[str, Any],
    bandwidth: Bandwidth,
    meter: EnergyMeter,
    progress: Progress = lambda _: None,
    notes: tuple[str, ...] = (),
) -> BenchReport:
    """Measure every model of ``plan``; see the module docstring."""
    results = tuple(
        _bench_model(plan, target, bandwidth, meter, progress) for target in plan.models
    )
    return BenchReport(plan, machine, bandwidth, meter.method, meter.label, results, notes)


def _bench_model(
    plan: BenchPlan,
    target: ModelTarget,
    bandwidth: Bandwidth,
    meter: EnergyMeter,
    progress: Progress,
) -> ModelResult:
    footprint = read_footprint(target.path)
    options = RunnerOptions(
        threads=target.threads[0],
        n_ctx=plan.n_ctx,
        n_batch=plan.n_batch,
        use_mmap=plan.use_mmap,
        use_mlock=plan.use_mlock,
        repack=plan.repack,
    )
    started = time.perf_counter()
    with LlamaRunner(target.path, options) as runner:
        load_s = time.perf_counter() - started
        if plan.prompt_tokens + plan.gen_tokens > runner.n_ctx_train:
            raise InvalidRequest(
                f"{plan.prompt_tokens} prompt + {plan.gen_tokens} generated tokens exceed the "
                f"context window of {target.model_id} ({runner.n_ctx_train} tokens)",
                param="prompt_tokens",
            )
        prompt = runner.prompt_tokens(plan.prompt_tokens)
        api_prompt = runner.detokenize(prompt)  # the API tokenizes it back to ~the same tokens
        by_threads = []
        for threads in target.threads:
            tick = _ticker(progress, f"{target.model_id} · {threads} threads")
            by_threads.append(
                measure_threads(
                    runner,
                    threads=threads,
                    prompt=prompt,
                    gen_tokens=plan.gen_tokens,
                    runs=plan.runs,
                    warmup=plan.warmup,
                    meter=meter,
                    on_run=tick,
                )
            )
        n_params = runner.n_params
    best = max(by_threads, key=lambda r: r.gen_tok_s.median)
    roofline = decode_roofline(
        footprint,
        bandwidth_bytes_s=bandwidth.bytes_per_s,
        measured_tok_s=best.gen_tok_s.median,
        prompt_tokens=plan.prompt_tokens,
        gen_tokens=plan.gen_tokens,
    )
    api = None
    if plan.api_url:
        api = bench_api(
            plan.api_url,
            model=target.model_id,
            prompt=api_prompt,
            gen_tokens=plan.gen_tokens,
            runs=plan.runs,
            warmup=plan.warmup,
            api_key=plan.api_key,
            on_run=_ticker(progress, f"{target.model_id} · API streaming"),
        )
    return ModelResult(
        target=target,
        file_bytes=target.path.stat().st_size,
        n_params=n_params,
        load_s=load_s,
        options=options,
        footprint=footprint,
        by_threads=tuple(by_threads),
        roofline=roofline,
        api=api,
    )


def _ticker(progress: Progress, label: str) -> Callable[[], None]:
    return lambda: progress(label)
