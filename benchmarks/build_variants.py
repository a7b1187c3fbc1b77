"""Decode speed of the default model under different llama.cpp builds and repack settings.

Why: ARIA builds llama-cpp-python with explicit ISA flags and AMX off (see
scripts/install_llama.py) instead of a native build, and keeps weight repacking on.
This script measures what that choice costs or gains on the machine at hand, with
every variant measured in the same run, interleaved, so the ratios are meaningful
on a noisy machine.

Each variant is a Python interpreter (a venv with a llama-cpp-python build) plus a
repack setting; each measurement runs in a fresh child process that imports only
llama_cpp and the standard library, so a build that crashes shows up as a crash.

    python benchmarks/build_variants.py --model PATH \\
        --variant aria=.venv/bin/python --variant native=/tmp/native-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

_CHILD = r"""
import json, sys, time
import llama_cpp

path, repack, threads, n_gen = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
params = dict(n_ctx=512, n_threads=threads, verbose=False)
if not repack:
    params["use_extra_bufts"] = False
llm = llama_cpp.Llama(path, **params)
prompt = llm.tokenize(b"The history of the printing press begins", add_bos=True)
llm.eval(prompt)
start = time.perf_counter()
for _ in range(n_gen):
    token = llm.sample(temp=0.0)
    llm.eval([token])
elapsed = time.perf_counter() - start
print(json.dumps({"decode_tok_s": n_gen / elapsed,
                  "system_info": llama_cpp.llama_print_system_info().decode().strip()}))
"""


def _measure(python: str, model: Path, repack: bool, threads: int, n_gen: int) -> dict[str, object]:
    child = subprocess.run(
        [python, "-c", _CHILD, str(model), "1" if repack else "0", str(threads), str(n_gen)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if child.returncode != 0:
        return {"error": f"exit {child.returncode}: {child.stderr.strip()[-300:]}"}
    result: dict[str, object] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument(
        "--variant", action="append", required=True, help="NAME=PYTHON (a venv's interpreter)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/build_variants.json"))
    options = parser.parse_args()

    variants = [
        (f"{name}{'' if repack else '-no-repack'}", python, repack)
        for name, python in (v.split("=", 1) for v in options.variant)
        for repack in (True, False)
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    info: dict[str, object] = {}
    for rep in range(options.reps):
        for name, python, repack in variants:  # interleaved: every variant sees the same noise
            result = _measure(python, options.model, repack, options.threads, options.gen_tokens)
            if "error" in result:
                info[name] = result
                continue
            samples[name].append(float(result["decode_tok_s"]))  # type: ignore[arg-type]
            info.setdefault(name, result["system_info"])
        print(f"rep {rep + 1}/{options.reps} done", file=sys.stderr)

    medians = {name: statistics.median(v) for name, v in samples.items() if v}
    baseline = medians.get(variants[0][0])
    table = {
        name: {
            "decode_tok_s_median": round(median, 2),
            "samples": [round(v, 2) for v in samples[name]],
            "ratio_vs_first": round(median / baseline, 3) if baseline else None,
            "build": info.get(name),
        }
        for name, median in medians.items()
    }
    report = {
        "kind": "aria-build-variants",
        "model": str(options.model),
        "threads": options.threads,
        "gen_tokens": options.gen_tokens,
        "reps": options.reps,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "variants": table,
        "failures": {k: v for k, v in info.items() if isinstance(v, dict)},
    }
    for name, row in table.items():
        print(f"{name:>24}: {row['decode_tok_s_median']:8.2f} tok/s  x{row['ratio_vs_first']}")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
