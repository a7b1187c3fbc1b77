"""Native ternary vs post-quantized formats on same-shape generated models.

Question (from the project's seed): at equal parameter count, does a native ternary
model (bitnet architecture, TQ1_0/TQ2_0) decode faster than the same shape stored as
F16 / Q8_0 / Q4_0 (llama architecture)? Decode on a CPU is memory-bound, so the answer
should follow the bytes read per token — this script measures both and reports what it
sees. Weights are random (aria.convert.synthetic): speed does not depend on their values.

    .venv/bin/python benchmarks/ternary_study.py                 # ~100M, ~200M, ~700M
    .venv/bin/python benchmarks/ternary_study.py --sizes 100M --runs 2   # quick look

Writes benchmarks/results/ternary_study.json and ternary_study.png. Generated models
are cached (deterministic from their spec) in --cache-dir.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from aria.bench.bandwidth import measure_read_bandwidth
from aria.bench.charts import ternary_chart
from aria.bench.machine import describe_machine
from aria.bench.service import BenchPlan, ModelTarget, run_bench
from aria.convert import SyntheticSpec, convert_llama_bitnet, write_gguf
from aria.convert.synthetic_checkpoint import CheckpointSpec, write_bitnet_checkpoint
from aria.energy import EnergyMeter
from aria.hardware import detect

RESULTS = Path(__file__).parent / "results"
# name -> (n_embd, n_layers, n_head, n_ff); n_embd and n_ff are multiples of 256 (ternary rows)
SHAPES: dict[str, tuple[int, int, int, int]] = {
    "100M": (768, 12, 12, 2048),
    "200M": (1024, 16, 16, 2816),
    "700M": (1536, 24, 24, 4096),
}
FORMATS: tuple[tuple[str, str], ...] = (
    ("llama", "F16"),
    ("llama", "Q8_0"),
    ("llama", "Q4_0"),
    ("bitnet", "TQ2_0"),
    ("bitnet", "TQ1_0"),
    # A published-format BitNet checkpoint (Falcon3 1.58-bit / Falcon-E layout) of the same
    # shape, converted by ARIA (aria.convert) to the llama architecture with TQ weights.
    ("converted", "TQ2_0"),
    ("converted", "TQ1_0"),
)


def main() -> None:
    args = _parser().parse_args()
    snapshot = detect()
    threads = args.threads or snapshot.cpu.physical_cores or snapshot.cpu.logical_cores
    models = []
    for size in args.sizes:
        n_embd, n_layers, n_head, n_ff = SHAPES[size]
        for arch, quant in FORMATS:
            spec = SyntheticSpec(
                arch="bitnet" if arch == "converted" else arch, quant=quant, n_embd=n_embd,
                n_layers=n_layers, n_head=n_head, n_ff=n_ff, n_ctx=1024,
                name=f"study-{size}-{arch}-{quant}",
            )  # fmt: skip
            path = args.cache_dir / f"{spec.model_name}.gguf"
            if not path.exists():
                print(f"generating {path.name} ({spec.params / 1e6:.0f}M params)", flush=True)
                if arch == "converted":
                    _converted(path, spec)
                else:
                    write_gguf(path, spec)
            models.append((size, arch, quant, spec, ModelTarget(spec.model_name, path, (threads,))))
    plan = BenchPlan(
        models=tuple(m[4] for m in models),
        prompt_tokens=args.prompt_tokens,
        gen_tokens=args.gen_tokens,
        runs=args.runs,
        warmup=1,
    )
    bandwidth = measure_read_bandwidth(max_threads=threads)
    report = run_bench(
        plan,
        machine=describe_machine(snapshot),
        bandwidth=bandwidth,
        meter=EnergyMeter(cpu_model=snapshot.cpu.model),
        progress=lambda label: print(f"  done a run: {label}", flush=True),
        notes=tuple(args.note),
    )
    rows = []
    for (size, arch, quant, spec, _), result in zip(models, report.models, strict=True):
        best = result.best
        rows.append(
            {
                "size": size,
                "arch": arch,
                "format": f"{quant} converted" if arch == "converted" else quant,
                "params": spec.params,
                "shape": dict(
                    zip(("n_embd", "n_layers", "n_head", "n_ff"), SHAPES[size], strict=True)
                ),
                "file_bytes": result.file_bytes,
                "bytes_per_token": result.roofline.bytes_per_token,
                "threads": best.threads,
                "gen_tok_s": best.gen_tok_s.as_dict(),
                "prompt_tok_s": best.prompt_tok_s.as_dict(),
                "energy_j_per_token": best.joules_per_token.as_dict(),
                "roofline_fraction": result.roofline.fraction,
                "ceiling_tok_s": result.roofline.ceiling_tok_s,
            }
        )
    study = {
        "kind": "aria-ternary-study",
        "question": (
            "native ternary (bitnet TQ1_0/TQ2_0) vs post-quantized llama formats, same shape"
        ),
        "machine": report.machine,
        "notes": list(args.note),
        "plan": plan.as_dict(),
        "memory_bandwidth": bandwidth.as_dict(),
        "energy": {"method": report.energy_method, "label": report.energy_label},
        "results": rows,
        "findings": _findings(rows),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ternary_study.json").write_text(json.dumps(study, indent=2) + "\n")
    ternary_chart(study, RESULTS / "ternary_study.png")
    for line in study["findings"]:
        print(line)


def _converted(path: Path, spec: SyntheticSpec) -> None:
    """Write a same-shape checkpoint in the published packing and convert it like a download."""
    folder = path.with_suffix(".checkpoint")
    checkpoint = CheckpointSpec(
        n_embd=spec.n_embd, n_layers=spec.n_layers, n_head=spec.n_head, n_head_kv=spec.n_head,
        n_ff=spec.n_ff, n_vocab=max(spec.n_vocab, 288), n_ctx=spec.n_ctx, tied=True,
    )  # fmt: skip
    write_bitnet_checkpoint(folder, checkpoint)
    quant = "TQ1_0" if spec.quant == "TQ1_0" else "TQ2_0"
    convert_llama_bitnet(
        folder, path, quant=quant, pre_tokenizer="falcon3", name=path.stem, licence="MIT"
    )


def _findings(rows: list[dict[str, Any]]) -> list[str]:
    """Per size: each format's speed relative to Q4_0 (the usual post-quantized choice)."""
    lines = []
    for size in dict.fromkeys(r["size"] for r in rows):
        by_format = {r["format"]: r for r in rows if r["size"] == size}
        base = by_format["Q4_0"]["gen_tok_s"]["median"]
        parts = []
        for fmt, row in by_format.items():
            rate = row["gen_tok_s"]["median"]
            parts.append(
                f"{fmt} {rate:.1f} tok/s ({rate / base:.2f}x Q4_0, "
                f"{row['bytes_per_token'] / 1e6:.0f} MB/token, "
                f"{row['roofline_fraction']:.0%} of roofline)"
            )
        lines.append(f"{size}: " + "; ".join(parts))
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--gen-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "aria-ternary-study"
    )
    return parser


if __name__ == "__main__":
    main()
