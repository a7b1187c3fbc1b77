"""Hostile-client soak: honest streaming clients next to a client that does everything wrong.

A real ``aria api start`` (its own process, on loopback) serves one model. Four honest
clients stream chat completions in a loop the whole time. The run alternates *quiet*
phases (honest clients alone) and *hostile* phases, in which a separate attacker process
mixes, round-robin:

* malformed and hostile bodies: invalid JSON, wrong types, grammar bombs (``minItems``
  10^7 in ``response_format`` and in a tool's parameters), a 300-level schema, tool-call
  arguments of 100,000 nested ``[``, a 200,000-level JSON body, an oversized and a
  chunked oversized body, a rebinding ``Host``, a foreign ``Origin``, unknown models,
  image content, ``n=2``, ``logprobs``, absurd ``max_tokens``;
* clients that leave: a stream dropped after two chunks, a non-streamed request dropped
  after 0.3 s;
* slow bodies: headers, then one byte every two seconds (up to three at a time);
* valid streams, read to the end.

It reports, per phase, the honest clients' decode speed (tokens after the first, over the
time from first to last token, per stream: what a user sees while reading) and their
time to first token (which includes waiting for the shared backend), and for the whole
run every response status the attacker and the honest clients got, the backend's starts
and crashes (from ``/metrics``) and its pid. Verdict: zero 5xx, zero worker restarts,
hostile/quiet decode speed within 20 %. Quiet and hostile phases alternate so that the
machine's background load weighs on both alike.

    python benchmarks/hostile_soak.py [--hostile-s 300] [--rounds 3] [--quiet-s 40]
                                      [--gguf PATH] [--threads 1]

Prints a summary and writes ``benchmarks/results/hostile_soak.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

RESULTS = Path(__file__).resolve().parent / "results" / "hostile_soak.json"
MODEL = "soak"
HONEST_CLIENTS = 4
HONEST_TOKENS = 96
NO_END = {"2": -100, "4": -100}  # the synthetic vocabulary's end tokens: fixed-length answers
HELLO = [{"role": "user", "content": "Tell me about lighthouses."}]


# -- the server --------------------------------------------------------------------------


def start_api(home: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "ARIA_HOME": str(home), "ARIA_INFERENCE__THREADS": str(threads)}
    log = (home / "api.log").open("wb")
    command = [sys.executable, "-m", "aria", "api", "start", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoint = home / "api" / "endpoint.json"
    deadline = time.monotonic() + 120
    while not endpoint.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the API did not start; see {home / 'api.log'}")
        time.sleep(0.1)
    return proc, json.loads(endpoint.read_text())["url"]


def install_model(home: Path, gguf: Path | None) -> None:
    from aria.catalog import load_catalog, load_denylist
    from aria.config import AriaPaths
    from aria.convert.synthetic import write_llama_gguf
    from aria.store import ModelStore

    if gguf is None:  # the API tests' "slow" model: a few ms per token on two cores
        gguf = write_llama_gguf(
            home / "soak.gguf", n_embd=512, n_layers=8, n_head=8, n_ff=1536, n_ctx=4096, seed=1
        )
    paths = AriaPaths(home)
    paths.ensure()
    ModelStore(paths, load_catalog(), load_denylist()).import_file(gguf, model_id=MODEL)


def backend_facts(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30) as http:
        backends = http.get("/health").json()["backends"]
        metrics = http.get("/metrics").text
    events = {}
    for line in metrics.splitlines():
        if line.startswith("aria_backend_events_total{"):
            name = line.split('event="')[1].split('"')[0]
            events[name] = float(line.split()[-1])
    pid = next((b["pid"] for b in backends if b["model"] == MODEL), None)
    return {"pid": pid, "events": events}


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        import psutil

        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except Exception:
        return None


# -- honest clients ----------------------------------------------------------------------


@dataclass
class Stream:
    phase: str
    ttft_s: float
    decode_tok_s: float
    tokens: int


@dataclass
class Honest:
    url: str
    phase: str = "warm-up"
    streams: list[Stream] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=600) as http:
            while not self.stop.is_set():
                phase = self.phase
                try:
                    outcome = self._one(http)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self.lock:
                    if isinstance(outcome, Stream):
                        outcome.phase = phase
                        self.streams.append(outcome)
                        self.statuses["200"] += 1
                    else:
                        self.statuses[outcome] += 1

    def _one(self, http: httpx.Client) -> Stream | str:
        body = {
            "model": MODEL,
            "messages": HELLO,
            "max_tokens": HONEST_TOKENS,
            "temperature": 0.7,
            "logit_bias": NO_END,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        started = time.perf_counter()
        stamps: list[float] = []
        tokens = 0
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                return str(response.status_code)
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return f"stream-error:{event['error'].get('code')}"
                if event.get("usage"):
                    tokens = int(event["usage"]["completion_tokens"])
                elif event["choices"] and event["choices"][0]["delta"].get("content"):
                    stamps.append(time.perf_counter())
        if tokens < 2 or len(stamps) < 2:
            return "short"
        decode = (tokens - 1) / (stamps[-1] - stamps[0])
        return Stream("", stamps[0] - started, decode, tokens)


# -- the attacker (its own process) ------------------------------------------------------


def _schema_bomb() -> dict[str, Any]:
    bomb = {"type": "array", "items": {"type": "integer"}, "minItems": 10_000_000}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": bomb}}
    return {"model": MODEL, "messages": HELLO, "max_tokens": 4, "response_format": fmt}


def _tool_bomb() -> dict[str, Any]:
    params = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 10**9}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    return {"model": MODEL, "messages": HELLO, "max_tokens": 4, "tools": [tool]}


def _deep_schema() -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"a": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    return {"model": MODEL, "messages": HELLO, "max_tokens": 4, "tools": [tool]}


def _nested_arguments() -> dict[str, Any]:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[" * 100_000}}
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]
    return {"model": MODEL, "messages": messages, "max_tokens": 2}


def _chunked_oversize() -> Iterator[bytes]:
    yield b'{"pad": "'
    for _ in range(5):
        yield b"x" * (1024 * 1024)
    yield b'"}'


JSON = {"content-type": "application/json"}
CHAT = "/v1/chat/completions"


def _malformed(http: httpx.Client, port: int) -> list[tuple[str, Callable[[], httpx.Response]]]:
    def post(body: Any, **kwargs: Any) -> Callable[[], httpx.Response]:
        return lambda: http.post(CHAT, json=body, **kwargs)

    def raw(content: bytes, headers: dict[str, str] = JSON) -> Callable[[], httpx.Response]:
        return lambda: http.post(CHAT, content=content, headers=headers)

    base = {"model": MODEL, "messages": HELLO, "max_tokens": 4}
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    return [
        ("truncated-json", raw(b'{"model": "soak", "messages": [')),
        ("empty-body", raw(b"")),
        ("text-plain", raw(b"hello", {"content-type": "text/plain"})),
        ("nested-json-body", raw(b"[" * 200_000)),
        ("oversized-body", raw(b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}')),
        (
            "chunked-oversized-body",
            lambda: http.post(CHAT, content=_chunked_oversize(), headers=JSON),
        ),
        ("wrong-type", post({**base, "temperature": "hot"})),
        ("empty-messages", post({**base, "messages": []})),
        ("absurd-max-tokens", post({**base, "max_tokens": 10**12})),
        ("n-2", post({**base, "n": 2})),
        ("logprobs", post({**base, "logprobs": True})),
        ("image-content", post({**base, "messages": image})),
        ("unknown-model", post({**base, "model": "no-such-model"})),
        ("logit-bias-outside-vocab", post({**base, "logit_bias": {"99999999": 5}})),
        ("schema-minitems-1e7", post(_schema_bomb())),
        ("tool-maxlength-1e9", post(_tool_bomb())),
        ("schema-300-deep", post(_deep_schema())),
        ("arguments-100k-brackets", post(_nested_arguments())),
        ("rebinding-host", post(base, headers={"host": f"evil.rebind.example:{port}"})),
        ("foreign-origin", post(base, headers={"origin": "https://evil.example"})),
    ]


def _leave_stream(http: httpx.Client) -> str:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 400, "stream": True}
    with http.stream("POST", CHAT, json={**body, "logit_bias": NO_END}) as response:
        lines = response.iter_lines()
        for _ in range(2):
            next(lines, None)
        return f"left-stream-{response.status_code}"


def _raw_request(url: str, body: dict[str, Any]) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    data = json.dumps(body).encode()
    sock.sendall(
        f"POST {CHAT} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def _leave_waiting(url: str) -> str:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 400, "logit_bias": NO_END}
    sock = _raw_request(url, body)
    time.sleep(0.3)
    sock.close()
    return "left-non-stream"


def _valid_stream(http: httpx.Client) -> str:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 32, "stream": True}
    with http.stream("POST", CHAT, json=body) as response:
        lines = list(response.iter_lines())
    errors = [line for line in lines if '"error"' in line]
    return f"stream-{response.status_code}" + ("-error" if errors else "")


def _slow_body(url: str, seconds: float) -> str:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.sendall(
        f"POST {CHAT} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        "Content-Length: 4096\r\n\r\n{".encode()
    )
    sock.settimeout(2.0)
    deadline = time.monotonic() + seconds
    answer = b""
    try:
        while time.monotonic() < deadline and not answer:
            try:
                answer = sock.recv(4096)
                break
            except TimeoutError:
                sock.sendall(b" ")
    except OSError:
        pass
    finally:
        sock.close()
    return "slow-" + (answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "gave-up")


def attacker(url: str, seconds: float, out: str) -> None:
    """The hostile client: runs for ``seconds``, then writes its tally to ``out``."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    port = urlsplit(url).port or 80

    def tally(kind: str, outcome: str) -> None:
        with lock:
            statuses[f"{kind}:{outcome}"] += 1

    def requests_loop(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            actions: list[tuple[str, Callable[[], Any]]] = [
                *_malformed(http, port),
                ("leave-stream", lambda: _leave_stream(http)),
                ("leave-waiting", lambda: _leave_waiting(url)),
                ("valid-stream", lambda: _valid_stream(http)),
            ]
            step = offset
            while time.monotonic() < deadline:
                kind, action = actions[step % len(actions)]
                step += 1
                try:
                    result = action()
                    outcome = str(result.status_code) if hasattr(result, "status_code") else result
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                tally(kind, str(outcome))
                time.sleep(0.05)

    def slow_loop() -> None:
        while time.monotonic() < deadline:
            tally("slow-body", _slow_body(url, min(45.0, max(1.0, deadline - time.monotonic()))))

    with ThreadPoolExecutor(max_workers=5) as pool:
        jobs = [pool.submit(requests_loop, offset) for offset in (0, 11)]
        jobs += [pool.submit(slow_loop) for _ in range(3)]
        for job in jobs:
            job.result()
    Path(out).write_text(json.dumps(dict(statuses)))


# -- the run -----------------------------------------------------------------------------


def summarize(streams: list[Stream]) -> dict[str, Any]:
    if not streams:
        return {"streams": 0}
    decode = [s.decode_tok_s for s in streams]
    ttft = [s.ttft_s * 1000 for s in streams]
    return {
        "streams": len(streams),
        "decode_tok_s_median": round(statistics.median(decode), 2),
        "decode_tok_s_p10": round(sorted(decode)[len(decode) // 10], 2),
        "ttft_ms_median": round(statistics.median(ttft), 1),
        "ttft_ms_p90": round(sorted(ttft)[int(len(ttft) * 0.9)], 1),
        "tokens": sum(s.tokens for s in streams),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostile-s", type=float, default=300.0, help="hostile time in all")
    parser.add_argument("--quiet-s", type=float, default=40.0, help="each quiet phase")
    parser.add_argument("--rounds", type=int, default=3, help="quiet/hostile alternations")
    parser.add_argument("--gguf", type=Path, help="model file (default: a generated one)")
    parser.add_argument("--threads", type=int, default=1, help="backend threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aria-soak-") as scratch:
        home = Path(scratch) / "home"
        install_model(home, args.gguf)
        proc, url = start_api(home, args.threads)
        honest = Honest(url)
        try:
            with httpx.Client(base_url=url, timeout=120) as http:  # load the backend
                http.post(CHAT, json={"model": MODEL, "messages": HELLO, "max_tokens": 2})
            before = backend_facts(url)
            load_before = os.getloadavg()
            threads = [threading.Thread(target=honest.run) for _ in range(HONEST_CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(5)  # warm-up streams are not counted
            attacks: Counter[str] = Counter()
            hostile_each = args.hostile_s / args.rounds
            for round_number in range(args.rounds):
                honest.phase = "quiet"
                print(f"round {round_number + 1}: quiet {args.quiet_s:.0f} s", flush=True)
                time.sleep(args.quiet_s)
                honest.phase = "hostile"
                print(f"round {round_number + 1}: hostile {hostile_each:.0f} s", flush=True)
                tally = Path(scratch) / f"attack-{round_number}.json"
                spawn = multiprocessing.get_context("spawn")
                attack = spawn.Process(target=attacker, args=(url, hostile_each, str(tally)))
                attack.start()
                attack.join(hostile_each + 120)
                attacks.update(json.loads(tally.read_text()))
            honest.phase = "done"
            honest.stop.set()
            for thread in threads:
                thread.join(600)
            after = backend_facts(url)
            load_after = os.getloadavg()
            api_rss = rss_mib(proc.pid)
            worker_rss = rss_mib(after["pid"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)

    quiet = summarize([s for s in honest.streams if s.phase == "quiet"])
    hostile = summarize([s for s in honest.streams if s.phase == "hostile"])
    ratio = hostile["decode_tok_s_median"] / quiet["decode_tok_s_median"]
    attacker_5xx = {k: v for k, v in attacks.items() if k.rsplit(":", 1)[1].startswith("5")}
    honest_failures = {k: v for k, v in honest.statuses.items() if k != "200"}
    restarts = after["events"].get("starts", 0) - before["events"].get("starts", 0)
    crashes = after["events"].get("crashes", 0)
    report = {
        "benchmark": "hostile_soak",
        "cpu": cpu_model(),
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "config": {
            "hostile_s": args.hostile_s,
            "quiet_s_each": args.quiet_s,
            "rounds": args.rounds,
            "honest_clients": HONEST_CLIENTS,
            "honest_max_tokens": HONEST_TOKENS,
            "backend_threads": args.threads,
            "model": str(args.gguf) if args.gguf else "generated: llama 512x8, Q8_0",
        },
        "honest": {"quiet": quiet, "hostile": hostile, "statuses": dict(honest.statuses)},
        "attacker": {"requests": sum(attacks.values()), "outcomes": dict(sorted(attacks.items()))},
        "backend": {
            "pid_before": before["pid"],
            "pid_after": after["pid"],
            "starts_during_run": restarts,
            "crashes": crashes,
            "worker_rss_mib_after": worker_rss,
            "api_rss_mib_after": api_rss,
        },
        "verdict": {
            "zero_5xx": not attacker_5xx and not any(k.startswith("5") for k in honest_failures),
            "zero_worker_restarts": restarts == 0
            and crashes == 0
            and before["pid"] == after["pid"],
            "honest_failures": honest_failures,
            "hostile_over_quiet_decode": round(ratio, 3),
            "within_20_percent": ratio >= 0.8,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("honest", "backend", "verdict")}, indent=2))
    print(f"attacker: {report['attacker']['requests']} requests; written to {args.out}")


if __name__ == "__main__":
    main()
