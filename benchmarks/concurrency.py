"""Concurrent streaming clients through the API: continuous batching vs one at a time.

For each model (the embedded SmolLM2-135M and a generated ~0.7B-parameter Q4_0 model of
the shape that gave llama.cpp 3.6x batched room here), two ARIA servers run side by
side in this process, each with its own worker: ``batched`` (the default: up to
``--parallel`` requests decoded together) and ``sequential`` (``inference.parallel = 1``:
one request at a time, the others queue, as every backend did before batching). Both are
driven with the ``openai`` SDK, level by level, alternating (so machine noise hits both):

* **burst** -- 1, 2, 4, 8, 16 clients each stream one chat completion of ``--max-tokens``
  tokens (end-of-text is masked with ``logit_bias`` so every stream does the same work):
  aggregate tok/s over the level's wall time, per-stream decode tok/s, TTFT p50/p95;
* **loaded TTFT** -- with N-1 clients streaming continuously, one more client sends
  short requests: its TTFT p50/p95 against the same probe on an idle server;
* **prompt cache** -- a ~1,000-token system prompt sent twice (different questions): the
  second request's TTFT against the first's, and the ``cached_tokens`` it reported.

Prints tables and writes ``benchmarks/results/concurrency.json`` with ``uptime`` load and
the CPU model. One command, about 10 minutes on a quiet 2-core machine:

    python benchmarks/concurrency.py [--models smollm2,synthetic-1b] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api_vs_inprocess import find_model
from machine import cpu_model, uptime_load
from openai import OpenAI

from aria.api.background import serve_in_thread
from aria.config import AriaPaths, AriaSettings
from aria.convert.synthetic import write_llama_gguf
from aria.hardware import detect
from aria.node import Node

RESULTS = Path(__file__).resolve().parent / "results" / "concurrency.json"
MODES = ("batched", "sequential")
# The shape facts.md measured 3.6x batched room on (n_embd 2048, 16 layers, GQA 16/4).
SYNTHETIC_1B = {
    "quant": "Q4_0",
    "n_embd": 2048,
    "n_layers": 16,
    "n_head": 16,
    "n_head_kv": 4,
    "n_ff": 5632,
    "n_ctx": 4096,
}
TOPICS = [
    "the sea", "a lighthouse", "bread", "the moon", "trains", "rain", "music", "a garden",
    "winter", "a library", "bees", "the desert", "a violin", "glaciers", "markets", "owls",
]  # fmt: skip
WORDS = [
    "the", "of", "and", "to", "in", "is", "was", "for", "that", "on", "as", "with", "by",
    "it", "at", "from", "his", "an", "be", "are", "or", "this", "which", "had", "not", "but",
    "were", "her", "she", "they", "you", "we", "all", "one", "there", "their", "has", "have",
    "been", "would", "can", "will", "more", "if", "no", "out", "so", "said", "what", "up",
]  # fmt: skip


@dataclass(frozen=True)
class Stream:
    started: float
    first: float | None
    last: float | None
    tokens: int
    cached: int

    @property
    def ttft_s(self) -> float:
        return (self.first or self.started) - self.started

    @property
    def decode_tok_s(self) -> float | None:
        if self.first is None or self.last is None or self.tokens < 2 or self.last <= self.first:
            return None
        return (self.tokens - 1) / (self.last - self.first)


@dataclass(frozen=True)
class Target:
    """One server to drive: its URL, model id and the tokens that end a text."""

    url: str
    model: str
    no_end: dict[str, int]

    def client(self) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=900)


def stream_chat(
    target: Target, messages: list[dict[str, str]], max_tokens: int, client: OpenAI | None = None
) -> Stream:
    client = client or target.client()
    started = time.perf_counter()
    first = last = None
    tokens = cached = 0
    chunks = client.chat.completions.create(
        model=target.model,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        temperature=0,
        logit_bias=target.no_end,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in chunks:
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
            details = chunk.usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details else 0
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
    return Stream(started, first, last, tokens, cached)


def question(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a short story about {TOPICS[n % len(TOPICS)]}."}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def burst(target: Target, clients: int, max_tokens: int) -> dict[str, Any]:
    """``clients`` streams started together, one request each."""
    begin = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        streams = list(
            pool.map(lambda n: stream_chat(target, question(n), max_tokens), range(clients))
        )
    wall = time.perf_counter() - begin
    rates = [r for s in streams if (r := s.decode_tok_s) is not None]
    ttfts = [s.ttft_s for s in streams]
    return {
        "clients": clients,
        "tokens": sum(s.tokens for s in streams),
        "wall_s": wall,
        "aggregate_tok_s": sum(s.tokens for s in streams) / wall,
        "per_stream_tok_s_median": statistics.median(rates) if rates else None,
        "ttft_ms_p50": 1000 * percentile(ttfts, 0.5),
        "ttft_ms_p95": 1000 * percentile(ttfts, 0.95),
    }


def probe_ttft(target: Target, probes: int) -> list[float]:
    """TTFT of ``probes`` short requests sent one after another (ms)."""
    client = target.client()
    times = []
    for n in range(probes):
        stream = stream_chat(target, question(100 + n), 4, client)
        times.append(1000 * stream.ttft_s)
        time.sleep(0.1)
    return times


def loaded_ttft(target: Target, load: int, probes: int, max_tokens: int) -> dict[str, Any]:
    """Probe TTFT while ``load`` other clients stream continuously."""
    stop = threading.Event()

    def background(n: int) -> None:
        client = target.client()
        while not stop.is_set():
            stream_chat(target, question(n), max_tokens, client)

    with ThreadPoolExecutor(max_workers=load) as pool:
        running = [pool.submit(background, n) for n in range(load)]
        time.sleep(1.0)  # let the background streams start decoding
        times = probe_ttft(target, probes)
        stop.set()
        for future in running:
            future.result()
    return {
        "background_streams": load,
        "ttft_ms": times,
        "ttft_ms_p50": percentile(times, 0.5),
        "ttft_ms_p95": percentile(times, 0.95),
    }


def system_prompt(session: int, words: int) -> str:
    body = " ".join(WORDS[(session * 7 + i * 13) % len(WORDS)] for i in range(words))
    return f"Session {session}. You answer questions about this text: {body}"


def prompt_cache(target: Target, sessions: int, words: int) -> dict[str, Any]:
    """TTFT of a long system prompt's first and second use (different questions)."""
    client = target.client()
    rows = []
    for session in range(sessions):
        system = {"role": "system", "content": system_prompt(session, words)}
        cold = stream_chat(target, [system, *question(session)], 4, client)
        warm = stream_chat(target, [system, *question(session + 1)], 4, client)
        rows.append(
            {
                "cold_ttft_ms": 1000 * cold.ttft_s,
                "warm_ttft_ms": 1000 * warm.ttft_s,
                "speedup": cold.ttft_s / warm.ttft_s,
                "warm_cached_tokens": warm.cached,
            }
        )
    return {
        "sessions": rows,
        "speedup_median": statistics.median(r["speedup"] for r in rows),
    }


def end_tokens(model: Path) -> dict[str, int]:
    """``logit_bias`` masking every end-of-text token of ``model`` (so streams run full)."""
    from gguf import GGUFReader

    fields = GGUFReader(model).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    ends = {int(fields["tokenizer.ggml.eos_token_id"].contents())}
    names = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end|>")
    ends |= {index for index, token in enumerate(tokens) if token in names}
    return {str(token): -100 for token in sorted(ends)}


def synthetic_model(cache: Path) -> Path:
    path = cache / "aria-synthetic-1b-q4_0.gguf"
    if not path.exists():
        print(f"generating {path.name} (once; about a minute)...", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        write_llama_gguf(partial, **SYNTHETIC_1B)  # type: ignore[arg-type]
        partial.rename(path)
    return path


def serve(
    model: str, settings: dict[str, Any], urls: Any, stop: Any
) -> None:  # pragma: no cover - runs in a child process
    """One ARIA server in its own process (clients in the parent share no GIL with it)."""
    with tempfile.TemporaryDirectory() as home:
        node = Node.create(
            AriaPaths(Path(home)), AriaSettings(inference=settings), hardware=detect()
        )
        model_id = node.store.import_file(Path(model)).entry.id
        with serve_in_thread(node) as url:
            urls.put((url, model_id))
            stop.wait()


@contextmanager
def servers(model: Path, threads: int, n_ctx: int, parallel: int) -> Iterator[dict[str, Target]]:
    """The two servers of one model, batched and sequential, each in its own process."""
    no_end = end_tokens(model)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    children = []
    targets = {}
    try:
        for mode in MODES:
            settings = {
                "threads": threads,
                "context_length": n_ctx,
                "parallel": parallel if mode == "batched" else 1,
                "max_waiting": 64,
            }
            urls = spawn.Queue()
            child = spawn.Process(target=serve, args=(str(model), settings, urls, stop))
            child.start()
            children.append(child)
            url, model_id = urls.get(timeout=300)
            targets[mode] = Target(url, model_id, no_end)
            stream_chat(targets[mode], question(0), 4)  # load the worker, warm the weights
        yield targets
    finally:
        stop.set()
        for child in children:
            child.join(60)


def alternate(runs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    return {mode: runs[mode]() for mode in runs}


def run_model(name: str, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    max_tokens = args.max_tokens if name == "smollm2" else args.max_tokens_large
    probes = args.probes
    print(f"\n== {name}: {model.name} ({max_tokens} tokens a stream)", flush=True)
    report: dict[str, Any] = {"model": str(model), "max_tokens": max_tokens, "levels": []}
    with servers(model, args.threads, args.n_ctx, args.parallel) as targets:
        report["slots"] = {mode: _slots(targets[mode]) for mode in MODES}
        report["idle_ttft"] = {
            mode: _summary_ms(probe_ttft(targets[mode], probes)) for mode in MODES
        }
        for clients in args.clients:
            row = {"clients": clients, "load_before": os.getloadavg()[0]}
            row |= alternate(
                {m: lambda m=m, c=clients: burst(targets[m], c, max_tokens) for m in MODES}
            )
            _print_level(row)
            report["levels"].append(row)
        report["loaded_ttft"] = alternate(
            {
                m: lambda m=m: loaded_ttft(targets[m], args.load - 1, probes, max_tokens)
                for m in MODES
            }
        )
        sessions = args.cache_sessions if name == "smollm2" else 1
        report["prompt_cache"] = alternate(
            {m: lambda m=m: prompt_cache(targets[m], sessions, args.system_words) for m in MODES}
        )
    report["verdict"] = _verdict(report, args.load)
    _print_model(report, args.load)
    return report


def _slots(target: Target) -> int | None:
    import httpx

    health = httpx.get(f"{target.url}/health", timeout=30).json()
    return next((b["slots"] for b in health["backends"] if b["model"] == target.model), None)


def _summary_ms(times: list[float]) -> dict[str, Any]:
    return {
        "ttft_ms": times,
        "ttft_ms_p50": percentile(times, 0.5),
        "ttft_ms_p95": percentile(times, 0.95),
    }


def _verdict(report: dict[str, Any], load: int) -> dict[str, Any]:
    levels = {row["clients"]: row for row in report["levels"]}
    single = levels[1]["batched"]["aggregate_tok_s"]
    verdict: dict[str, Any] = {}
    if load in levels:
        verdict[f"aggregate_at_{load}_over_single"] = (
            levels[load]["batched"]["aggregate_tok_s"] / single
        )
        verdict[f"sequential_aggregate_at_{load}_over_single"] = (
            levels[load]["sequential"]["aggregate_tok_s"]
            / levels[1]["sequential"]["aggregate_tok_s"]
        )
    idle = report["idle_ttft"]["batched"]["ttft_ms_p50"]
    verdict["loaded_ttft_p95_over_idle"] = report["loaded_ttft"]["batched"]["ttft_ms_p95"] / idle
    verdict["prompt_cache_speedup"] = report["prompt_cache"]["batched"]["speedup_median"]
    return verdict


def _print_level(row: dict[str, Any]) -> None:
    for mode in MODES:
        result = row[mode]
        per_stream = result["per_stream_tok_s_median"]
        print(
            f"  {row['clients']:>2} clients {mode:<10} {result['aggregate_tok_s']:7.1f} tok/s "
            f"aggregate, {per_stream or 0:6.1f} per stream, TTFT p50 {result['ttft_ms_p50']:7.0f}"
            f" p95 {result['ttft_ms_p95']:7.0f} ms",
            flush=True,
        )


def _print_model(report: dict[str, Any], load: int) -> None:
    for mode in MODES:
        loaded = report["loaded_ttft"][mode]
        cache = report["prompt_cache"][mode]
        print(
            f"  {mode:<10} slots {report['slots'][mode]}, idle TTFT p50 "
            f"{report['idle_ttft'][mode]['ttft_ms_p50']:.0f} ms, with {load - 1} streams "
            f"running p50 {loaded['ttft_ms_p50']:.0f} / p95 {loaded['ttft_ms_p95']:.0f} ms; "
            f"repeated system prompt: TTFT x{cache['speedup_median']:.1f} faster"
        )
    print(f"  verdict: {json.dumps({k: round(v, 2) for k, v in report['verdict'].items()})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2,synthetic-1b")
    parser.add_argument("--smollm2", help="SmolLM2 GGUF (default: the installed one)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "aria-bench-models"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048, help="context window per request")
    parser.add_argument("--parallel", type=int, default=8, help="slots of the batched server")
    parser.add_argument(
        "--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16]
    )
    parser.add_argument("--load", type=int, default=8, help="streams for the loaded-TTFT probe")
    parser.add_argument("--max-tokens", type=int, default=64, help="per stream, SmolLM2")
    parser.add_argument("--max-tokens-large", type=int, default=32, help="per stream, 1B")
    parser.add_argument("--probes", type=int, default=6)
    parser.add_argument("--cache-sessions", type=int, default=3)
    parser.add_argument("--system-words", type=int, default=1000)
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    models = {
        "smollm2": lambda: find_model(args.smollm2),
        "synthetic-1b": lambda: synthetic_model(args.cache_dir),
    }
    started = time.time()
    uptime_before = uptime_load()
    print(f"{cpu_model()}; {uptime_before}")
    results = {}
    for name in args.models.split(","):
        results[name] = run_model(name, models[name](), args)
    report = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "uptime_before": uptime_before,
        "uptime_after": uptime_load(),
        "duration_s": time.time() - started,
        "threads": args.threads,
        "parallel": args.parallel,
        "n_ctx": args.n_ctx,
        "clients": args.clients,
        "targets": {
            "aggregate_at_8_over_single": {"smollm2": 1.8, "synthetic-1b": 3.0},
            "loaded_ttft_p95_over_idle": 3.0,
            "prompt_cache_speedup": 5.0,
        },
        "models": results,
        "note": args.note,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\n{report['uptime_after']}; {report['duration_s']:.0f} s; wrote {RESULTS}")


if __name__ == "__main__":
    main()
