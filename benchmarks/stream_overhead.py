"""Where the API's extra milliseconds go: one stream measured layer by layer.

The same prompt, model, threads and greedy decoding through five layers, each adding one
hop to the one before, in one run with interleaved repetitions (so machine noise hits
every layer alike):

* ``llama_cpp`` -- ``Llama.create_completion(stream=True)`` in this process (the usual
                   way to use llama-cpp-python: the reference of ``api_vs_inprocess.py``);
* ``engine``    -- ARIA's batching engine in this process (``submit`` + ``step``);
* ``worker``    -- the same engine in a worker process, over its stdin/stdout pipe;
* ``node``      -- ``Node.generate``: router, dispatcher, slot lease, channel;
* ``api``       -- ``POST /v1/completions`` streamed over HTTP (hypercorn, SSE, httpx).

Per layer: median time to first token and decode rate; the differences between
consecutive layers are the cost of each hop. Plus two floors measured on their own: an
HTTP round trip to ``/health`` and the cost of framing one SSE chunk. Prints a table and
writes ``benchmarks/results/stream_overhead.json``.

    python benchmarks/stream_overhead.py [--model PATH] [--threads 2] [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio
from api_vs_inprocess import (
    PROMPT,
    Sample,
    api_stream,
    find_model,
    inprocess_runner,
    interleaved,
    sample_of,
    summary,
)
from machine import cpu_model, uptime_load

from aria.api.background import serve_in_thread
from aria.api.payloads import Chunks
from aria.backends import DoneEvent, GenerationJob, WorkerLaunch
from aria.backends.engine import Ended, Piece
from aria.backends.process import WorkerProcess
from aria.config import AriaPaths, AriaSettings
from aria.hardware import detect
from aria.node import Node

RESULTS = Path(__file__).resolve().parent / "results" / "stream_overhead.json"
LAYERS = ("llama_cpp", "engine", "worker", "node", "api")
N_CTX = 2048
T = TypeVar("T")


class LoopThread:
    """A trio loop in a thread, for async layers driven from blocking code."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop = threading.Event()
        ready = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            ready.set()
            while not self._stop.is_set():
                await trio.sleep(0.05)

        self._thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        return trio.from_thread.run(function, *args, trio_token=self._token)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def engine_runner(launch: WorkerLaunch, max_tokens: int) -> Callable[[], Sample]:
    from aria.backends.llama_engine import LlamaEngine

    engine = LlamaEngine(launch)
    job = GenerationJob(prompt=PROMPT, max_tokens=max_tokens, temperature=0.0)
    ids = iter(range(1, 1 << 30))

    def run() -> Sample:
        started, stamps = time.perf_counter(), []
        engine.submit(next(ids), job)
        while engine.has_work():
            for event in engine.step():
                if isinstance(event, Piece):
                    stamps.append(time.perf_counter())
                elif isinstance(event, Ended):
                    assert event.result.completion_tokens
        return sample_of(started, stamps, len(stamps))

    return run


def worker_runner(
    loop: LoopThread, launch: WorkerLaunch, logs: Path, max_tokens: int
) -> Callable[[], Sample]:
    process: WorkerProcess = loop.call(WorkerProcess.spawn, launch, logs / "worker.log")
    loop.call(process.handshake, 120.0)
    job = GenerationJob(prompt=PROMPT, max_tokens=max_tokens, temperature=0.0).to_wire()
    ids = iter(range(1, 1 << 30))

    async def once() -> Sample:
        request_id = next(ids)
        started, stamps = time.perf_counter(), []
        await process.send({"op": "generate", "id": request_id, "job": job})
        while (await process.receive())["ev"] == "tok":
            stamps.append(time.perf_counter())
        return sample_of(started, stamps, len(stamps))

    return lambda: loop.call(once)


def node_runner(
    loop: LoopThread, node: Node, model_id: str, max_tokens: int
) -> Callable[[], Sample]:
    """``Node.generate`` on the loop thread; the node runs until that loop ends."""
    job = GenerationJob(prompt=PROMPT, max_tokens=max_tokens, temperature=0.0)

    async def start() -> None:
        running = trio.Event()

        async def keep() -> None:
            async with node.running():
                running.set()
                await trio.sleep_forever()

        trio.lowlevel.spawn_system_task(keep)
        await running.wait()

    async def once() -> Sample:
        started, stamps = time.perf_counter(), []
        async with await node.generate(job, model_id) as served:
            async for event in served.events():
                if isinstance(event, DoneEvent):
                    break
                stamps.append(time.perf_counter())
        return sample_of(started, stamps, len(stamps))

    loop.call(start)
    return lambda: loop.call(once)


def http_floor(url: str, reps: int = 50) -> float:
    """Median round trip of ``GET /health`` on a warm connection (ms)."""
    with httpx.Client(base_url=url) as client:
        client.get("/health")
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            client.get("/health")
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def sse_chunk_us() -> float:
    """Cost of framing one streamed token as an SSE chunk (µs)."""
    chunks = Chunks("text", "model")
    runs = 20000
    return 1e6 * timeit.timeit(lambda: chunks.content(" word"), number=runs) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--note", default="", help="Free text stored with the results.")
    args = parser.parse_args()
    model = find_model(args.model)
    launch = WorkerLaunch(model_path=str(model), n_ctx=N_CTX, threads=args.threads)
    settings = AriaSettings(inference={"threads": args.threads, "context_length": N_CTX})

    with tempfile.TemporaryDirectory() as home_a, tempfile.TemporaryDirectory() as home_b:
        hardware = detect()
        node_for_api = Node.create(AriaPaths(Path(home_a)), settings, hardware=hardware)
        node_alone = Node.create(AriaPaths(Path(home_b)), settings, hardware=hardware)
        model_id = node_for_api.store.import_file(model).entry.id
        node_alone.store.import_file(model)
        loop = LoopThread()
        load_before = os.getloadavg()
        try:
            with (
                serve_in_thread(node_for_api) as url,
                httpx.Client(base_url=url, timeout=600) as client,
            ):
                runners = {
                    "llama_cpp": inprocess_runner(model, args.threads, N_CTX, args.max_tokens)[0],
                    "engine": engine_runner(launch, args.max_tokens),
                    "worker": worker_runner(loop, launch, Path(home_b), args.max_tokens),
                    "node": node_runner(loop, node_alone, model_id, args.max_tokens),
                    "api": lambda: api_stream(client, model_id, args.max_tokens),
                }
                for runner in runners.values():  # warm-up: load, first touch of the weights
                    runner()
                collected: dict[str, list[Sample]] = {name: [] for name in runners}
                for name, sample in interleaved(runners, args.reps):
                    collected[name].append(sample)
                floor_ms = http_floor(url)
        finally:
            loop.close()
        load_after = os.getloadavg()

    results = {name: summary(samples) for name, samples in collected.items()}
    hops = [
        {
            "hop": f"{inner} -> {outer}",
            "ttft_ms": results[outer]["ttft_ms_median"] - results[inner]["ttft_ms_median"],
            "decode_ratio": results[outer]["decode_tok_s_median"]
            / results[inner]["decode_tok_s_median"],
        }
        for inner, outer in zip(LAYERS, LAYERS[1:], strict=False)
    ]
    reference, api = results["llama_cpp"], results["api"]
    report = {
        "model": str(model),
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "reps": args.reps,
        "cpu": cpu_model(),
        "uptime_after": uptime_load(),
        "load_average_before_after": [load_before[0], load_after[0]],
        "results": results,
        "hops": hops,
        "http_health_round_trip_ms": floor_ms,
        "sse_chunk_us": sse_chunk_us(),
        "api_ttft_overhead_ms": api["ttft_ms_median"] - reference["ttft_ms_median"],
        "api_decode_ratio": api["decode_tok_s_median"] / reference["decode_tok_s_median"],
        "targets": {"ttft_overhead_ms": 5.0, "decode_ratio": 0.97},
        "note": args.note,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(
        f"model {model.name}, {args.threads} threads, {args.max_tokens} tokens, {args.reps} "
        f"interleaved reps, {report['cpu']} (load {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    print(f"{'layer':<11}{'TTFT ms':>9}{'decode tok/s':>14}")
    for name in LAYERS:
        result = results[name]
        print(f"{name:<11}{result['ttft_ms_median']:>9.1f}{result['decode_tok_s_median']:>14.1f}")
    for hop in hops:
        print(
            f"  {hop['hop']:<20} TTFT {hop['ttft_ms']:+6.1f} ms   rate x{hop['decode_ratio']:.3f}"
        )
    print(
        f"HTTP /health round trip {floor_ms:.2f} ms; SSE framing {report['sse_chunk_us']:.1f} µs "
        f"a chunk; API vs llama-cpp-python: TTFT {report['api_ttft_overhead_ms']:+.1f} ms "
        f"(target <= 5), rate x{report['api_decode_ratio']:.3f} (target >= 0.97)"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
