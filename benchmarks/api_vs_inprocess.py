"""Streaming through ARIA's API vs. llama-cpp-python in-process: tok/s and TTFT.

Same model file, same threads, same prompt, greedy, in one run with interleaved
repetitions (in-process, API, API, in-process, ...) so machine noise hits both sides.
Three paths are measured per repetition:

* ``inprocess``     -- ``Llama.create_completion(stream=True)`` in this process (the
                       usual way to use llama-cpp-python; the target's reference);
* ``inprocess_raw`` -- a bare ``Llama.generate`` loop (the least work possible);
* ``api``           -- ``POST /v1/completions`` with ``stream=true`` on a real ARIA server
                       (hypercorn/trio) whose worker process runs the model.

Optionally ``--concurrency N`` then runs N simultaneous streaming clients against the
API and reports their aggregate throughput. Prints a table and writes
``benchmarks/results/api_vs_inprocess.json``.

    python benchmarks/api_vs_inprocess.py [--model PATH] [--threads 2] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from aria.api.background import serve_in_thread
from aria.config import AriaPaths, AriaSettings
from aria.hardware import detect
from aria.node import Node

RESULTS = Path(__file__).resolve().parent / "results" / "api_vs_inprocess.json"
DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEV_COPY = Path("/work/models/SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPT = (
    "<|im_start|>user\nWrite a long, detailed story about a lighthouse keeper who finds a "
    "message in a bottle.<|im_end|>\n<|im_start|>assistant\n"
)


@dataclass(frozen=True)
class Sample:
    tokens: int
    ttft_s: float
    decode_tok_s: float  # (tokens - 1) / (last token - first token): decode speed only


def sample_of(started: float, stamps: list[float], tokens: int) -> Sample:
    if tokens < 2 or len(stamps) < 2:
        raise RuntimeError("the model stopped before generating two tokens; use another prompt")
    return Sample(tokens, stamps[0] - started, (tokens - 1) / (stamps[-1] - stamps[0]))


def find_model(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    import platformdirs

    from aria.catalog import load_catalog, load_denylist
    from aria.store import ModelStore

    home = AriaPaths(
        Path(os.environ.get("ARIA_HOME") or platformdirs.user_data_dir("aria", "aria"))
    )
    store = ModelStore(home, load_catalog(), load_denylist())
    if store.is_installed(DEFAULT_MODEL):
        return store.path_of(DEFAULT_MODEL)
    if DEV_COPY.is_file():
        return DEV_COPY
    sys.exit(f"no model: pass --model PATH or run `aria model download {DEFAULT_MODEL}`")


def inprocess_runner(
    model: Path, threads: int, n_ctx: int, max_tokens: int
) -> tuple[Callable[[], Sample], Callable[[], Sample]]:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )

    def completion() -> Sample:
        started = time.perf_counter()
        stamps: list[float] = []
        for chunk in llm.create_completion(
            PROMPT, max_tokens=max_tokens, temperature=0.0, stream=True
        ):
            if chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
        return sample_of(started, stamps, len(stamps))

    def raw() -> Sample:
        started = time.perf_counter()
        stamps: list[float] = []
        tokens = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
        for token in llm.generate(tokens, temp=0.0):
            if token == llm.token_eos() or len(stamps) == max_tokens:
                break
            llm.detokenize([token])
            stamps.append(time.perf_counter())
        return sample_of(started, stamps, len(stamps))

    return completion, raw


def api_stream(client: httpx.Client, model_id: str, max_tokens: int) -> Sample:
    body = {
        "model": model_id,
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    with client.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            elif event["choices"] and event["choices"][0]["text"]:
                stamps.append(time.perf_counter())
    return sample_of(started, stamps, tokens)


def summary(samples: list[Sample]) -> dict[str, Any]:
    return {
        "decode_tok_s_median": statistics.median(s.decode_tok_s for s in samples),
        "ttft_ms_median": 1000 * statistics.median(s.ttft_s for s in samples),
        "tokens": [s.tokens for s in samples],
        "samples": [asdict(s) for s in samples],
    }


def concurrent_clients(url: str, model_id: str, clients: int, max_tokens: int) -> dict[str, Any]:
    def one(_: int) -> tuple[Sample, float]:
        with httpx.Client(base_url=url, timeout=600) as client:
            begin = time.perf_counter()
            sample = api_stream(client, model_id, max_tokens)
            return sample, time.perf_counter() - begin

    begin = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, range(clients)))
    wall = time.perf_counter() - begin
    tokens = sum(sample.tokens for sample, _ in results)
    return {
        "clients": clients,
        "completed": len(results),
        "wall_s": wall,
        "aggregate_tok_s": tokens / wall,
        "slowest_client_s": max(elapsed for _, elapsed in results),
        "ttft_ms_max": 1000 * max(sample.ttft_s for sample, _ in results),
    }


def interleaved(
    runners: dict[str, Callable[[], Sample]], reps: int
) -> Iterator[tuple[str, Sample]]:
    names = list(runners)
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            time.sleep(0.3)  # let the other side's threads go idle
            yield name, runners[name]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8, help="0 to skip")
    parser.add_argument("--note", default="", help="Free text stored with the results.")
    args = parser.parse_args()
    model = find_model(args.model)
    n_ctx = 2048

    with tempfile.TemporaryDirectory() as home:
        settings = AriaSettings(inference={"threads": args.threads, "context_length": n_ctx})
        node = Node.create(AriaPaths(Path(home)), settings, hardware=detect())
        model_id = node.store.import_file(model).entry.id
        completion, raw = inprocess_runner(model, args.threads, n_ctx, args.max_tokens)
        load_before = os.getloadavg()
        with serve_in_thread(node) as url, httpx.Client(base_url=url, timeout=600) as client:
            runners = {
                "inprocess": completion,
                "inprocess_raw": raw,
                "api": lambda: api_stream(client, model_id, args.max_tokens),
            }
            for runner in runners.values():  # warm-up: load, first-touch of the weights
                runner()
            collected: dict[str, list[Sample]] = {name: [] for name in runners}
            for name, sample in interleaved(runners, args.reps):
                collected[name].append(sample)
            crowd = (
                concurrent_clients(url, model_id, args.concurrency, args.max_tokens)
                if args.concurrency
                else None
            )
        load_after = os.getloadavg()

    results = {name: summary(samples) for name, samples in collected.items()}
    api, inproc, raw_ = results["api"], results["inprocess"], results["inprocess_raw"]
    report = {
        "model": str(model),
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "reps": args.reps,
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [load_before[0], load_after[0]],
        "results": results,
        "ratio_api_vs_inprocess": api["decode_tok_s_median"] / inproc["decode_tok_s_median"],
        "ratio_api_vs_inprocess_raw": api["decode_tok_s_median"] / raw_["decode_tok_s_median"],
        "ttft_overhead_ms": api["ttft_ms_median"] - inproc["ttft_ms_median"],
        "target_ratio": 0.97,
        "concurrency": crowd,
        "note": args.note,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(
        f"model {model.name}, {args.threads} threads, {args.max_tokens} tokens, "
        f"{args.reps} interleaved reps (load {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    print(f"{'path':<15}{'decode tok/s':>14}{'TTFT ms':>10}")
    for name, result in results.items():
        print(f"{name:<15}{result['decode_tok_s_median']:>14.1f}{result['ttft_ms_median']:>10.1f}")
    print(
        f"API / in-process tok/s: {report['ratio_api_vs_inprocess']:.3f} "
        f"(vs raw loop {report['ratio_api_vs_inprocess_raw']:.3f}; target >= 0.97); "
        f"TTFT overhead {report['ttft_overhead_ms']:+.1f} ms"
    )
    if crowd:
        print(
            f"{crowd['clients']} concurrent streams: all {crowd['completed']} completed in "
            f"{crowd['wall_s']:.1f} s, {crowd['aggregate_tok_s']:.1f} tok/s aggregate, "
            f"slowest {crowd['slowest_client_s']:.1f} s"
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
