"""PNG charts drawn from benchmark JSON (matplotlib, Agg backend, imported lazily).

Charts read the same dictionaries that are written to ``benchmarks/results/``, so any
committed result can be re-plotted without re-measuring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["bench_chart", "ternary_chart"]

_DPI = 80  # keeps committed PNGs small


def bench_chart(report: Mapping[str, Any], path: Path) -> Path:
    """Three panels: tok/s per model, thread scaling, fraction of the roofline."""
    plt = _pyplot()
    models: Sequence[Mapping[str, Any]] = report["models"]
    names = [m["model"] for m in models]
    fig, (rates, scaling, roof) = plt.subplots(1, 3, figsize=(13, 3.8))
    positions = range(len(models))
    width = 0.4
    rates.bar(
        [p - width / 2 for p in positions],
        [m["prompt_tok_s"]["median"] for m in models],
        width,
        label="prompt",
    )
    rates.bar(
        [p + width / 2 for p in positions],
        [m["gen_tok_s"]["median"] for m in models],
        width,
        label="generation",
    )
    _label_models(rates, names)
    rates.set_ylabel("tokens/s (median)")
    rates.set_title("Throughput per model")
    rates.legend()
    for model in models:
        sweep = model["thread_sweep"]
        scaling.plot(
            [s["threads"] for s in sweep],
            [s["gen_tok_s"]["median"] for s in sweep],
            marker="o",
            label=model["model"],
        )
    scaling.xaxis.set_major_locator(_integer_ticks())
    scaling.set_xlabel("threads")
    scaling.set_ylabel("generation tokens/s")
    scaling.set_title("Thread scaling")
    scaling.legend(fontsize="small")
    roof.bar(list(positions), [m["roofline"]["fraction"] for m in models], color="tab:green")
    roof.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    _label_models(roof, names)
    roof.set_ylabel("measured / ceiling")
    gb_s = report["memory_bandwidth"]["read_gb_s"]
    roof.set_title(f"Fraction of decode roofline ({gb_s:.1f} GB/s)")
    return _save(plt, fig, path)


def ternary_chart(study: Mapping[str, Any], path: Path) -> Path:
    """Generation tok/s and bytes read per token for each format, grouped by model size."""
    plt = _pyplot()
    rows: Sequence[Mapping[str, Any]] = study["results"]
    sizes = sorted(
        {r["size"] for r in rows}, key=lambda s: min(r["params"] for r in rows if r["size"] == s)
    )
    formats = list(dict.fromkeys(r["format"] for r in rows))
    fig, (speed, traffic) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(formats)
    for index, fmt in enumerate(formats):
        by_size = {r["size"]: r for r in rows if r["format"] == fmt}
        xs = [i + (index - (len(formats) - 1) / 2) * width for i in range(len(sizes))]
        speed.bar(
            xs,
            [by_size[s]["gen_tok_s"]["median"] if s in by_size else 0 for s in sizes],
            width,
            label=fmt,
        )
        traffic.bar(
            xs,
            [by_size[s]["bytes_per_token"] / 1e6 if s in by_size else 0 for s in sizes],
            width,
            label=fmt,
        )
    for axis in (speed, traffic):
        axis.set_xticks(range(len(sizes)))
        axis.set_xticklabels(sizes)
        axis.legend(fontsize="small")
    speed.set_ylabel("generation tokens/s (median)")
    speed.set_title("Decode speed, same-shape models")
    traffic.set_ylabel("MB read per token")
    traffic.set_title("Weight + KV bytes per token")
    return _save(plt, fig, path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _label_models(axis: Any, names: Sequence[str]) -> None:
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels(names, rotation=20, ha="right", fontsize="small")


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path
