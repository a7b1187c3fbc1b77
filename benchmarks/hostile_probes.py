"""One measurement per hole of issue 11, on a real server (in this process, real workers).

* grammar bomb: ``minItems`` 10^7 in ``response_format``: status, latency, worker RSS change;
* parser bomb: tool-call arguments of 100,000 nested ``[``: status, backend pid kept or not;
* a non-streamed client that leaves mid-generation: how long until the backend is free,
  how many tokens it generated in all, and the backend's token time (for "within a token");
* back-pressure: 20 requests beyond ``inference.max_waiting`` while it is full;
* DNS rebinding: a foreign ``Host`` on the keyless API.

    python benchmarks/hostile_probes.py   # writes benchmarks/results/hostile_probes.json
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from aria.api.background import serve_in_thread
from aria.config import AriaPaths, AriaSettings
from aria.convert.synthetic import write_llama_gguf
from aria.hardware import detect
from aria.node import Node

RESULTS = Path(__file__).resolve().parent / "results" / "hostile_probes.json"
HELLO = [{"role": "user", "content": "hello"}]
NO_END = {"2": -100, "4": -100}
CHAT = "/v1/chat/completions"


def node_with(home: Path, model: Path, **settings: Any) -> Node:
    node = Node.create(AriaPaths(home), AriaSettings(**settings), hardware=detect())
    node.store.import_file(model, model_id="m")
    return node


def backend(http: httpx.Client) -> dict[str, Any]:
    return next(b for b in http.get("/health").json()["backends"] if b["model"] == "m")


def tokens_out(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('aria_completion_tokens_total{model="m"}'):
            return float(line.split()[-1])
    return 0.0


def wait(condition: Any, timeout: float = 60) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)
    return time.monotonic() - started


def probes(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=300) as http:
        http.post(CHAT, json={"model": "m", "messages": HELLO, "max_tokens": 1})
        pid = backend(http)["pid"]
        worker = psutil.Process(pid)

        bomb = {"type": "array", "items": {"type": "integer"}, "minItems": 10_000_000}
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": bomb}}
        rss = worker.memory_info().rss
        started = time.perf_counter()
        reply = http.post(
            CHAT, json={"model": "m", "messages": HELLO, "max_tokens": 1, "response_format": fmt}
        )
        out["grammar_bomb"] = {
            "status": reply.status_code,
            "param": reply.json()["error"]["param"],
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "worker_rss_change_mib": round((worker.memory_info().rss - rss) / 2**20, 2),
        }

        call = {
            "id": "c",
            "type": "function",
            "function": {"name": "f", "arguments": "[" * 100_000},
        }
        messages = [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ]
        reply = http.post(CHAT, json={"model": "m", "messages": messages, "max_tokens": 2})
        out["nested_arguments"] = {
            "status": reply.status_code,
            "backend_pid_kept": backend(http)["pid"] == pid,
        }

        started = time.perf_counter()
        timed = http.post(
            CHAT, json={"model": "m", "messages": HELLO, "max_tokens": 400, "logit_bias": NO_END}
        ).json()
        token_ms = (time.perf_counter() - started) * 1000 / timed["usage"]["completion_tokens"]
        before = tokens_out(http)
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port))
        body = json.dumps(
            {"model": "m", "messages": HELLO, "max_tokens": 3000, "logit_bias": NO_END}
        ).encode()
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait(lambda: backend(http)["state"] == "busy")
        time.sleep(1.0)
        sock.close()
        freed_s = wait(lambda: backend(http)["state"] == "ready")
        wait(lambda: tokens_out(http) > before)
        out["non_streamed_disconnect"] = {
            "asked_tokens": 3000,
            "generated_tokens": tokens_out(http) - before,
            "backend_free_after_ms": round(freed_s * 1000, 1),
            "token_time_ms": round(token_ms, 2),
            "note": "the client left after 1 s; 'free after' includes /health polling",
        }

        rebinding = http.get("/v1/models", headers={"host": "evil.rebind.example"})
        out["rebinding_host"] = {"status": rebinding.status_code}
    return out


def back_pressure(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=300) as http:
        http.post(CHAT, json={"model": "m", "messages": HELLO, "max_tokens": 1})
        body = {"model": "m", "messages": HELLO, "max_tokens": 600, "logit_bias": NO_END}
        with http.stream("POST", CHAT, json={**body, "stream": True}) as holding:
            lines = holding.iter_lines()
            next(lines)
            with ThreadPoolExecutor(max_workers=24) as pool:
                short = {"model": "m", "messages": HELLO, "max_tokens": 2}
                waiting = [
                    pool.submit(httpx.post, f"{url}{CHAT}", json=short, timeout=300)
                    for _ in range(2)
                ]
                wait(lambda: backend(http)["queued"] == 3)
                started = time.perf_counter()
                extra = list(
                    pool.map(
                        lambda _: httpx.post(f"{url}{CHAT}", json=short, timeout=60), range(20)
                    )
                )
                refusal_ms = (time.perf_counter() - started) * 1000
                statuses = [r.status_code for r in extra]
                rest = [line for line in lines if line.startswith("data: ")]
                served = [f.result().status_code for f in waiting]
    return {
        "extra_statuses": {str(s): statuses.count(s) for s in set(statuses)},
        "retry_after": extra[0].headers.get("retry-after"),
        "all_20_refused_within_ms": round(refusal_ms, 1),
        "queued_requests_served": served,
        "holding_stream_completed": rest[-1] == "data: [DONE]",
    }


def main() -> None:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="aria-probes-") as scratch:
        root = Path(scratch)
        model = write_llama_gguf(
            root / "m.gguf", n_embd=512, n_layers=8, n_head=8, n_ff=1536, n_ctx=4096, seed=1
        )
        with serve_in_thread(node_with(root / "a", model)) as url:
            results = probes(url)
        with serve_in_thread(node_with(root / "b", model, inference={"max_waiting": 2})) as url:
            results["back_pressure"] = back_pressure(url)
    report = {
        "benchmark": "hostile_probes",
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        ),
        "load_average_1min": round(load[0], 2),
        "python": sys.version.split()[0],
        **results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
