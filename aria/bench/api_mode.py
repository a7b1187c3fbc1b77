"""Benchmark through a running ARIA API: streamed ``/v1/completions``, as a client sees it.

Time to first token is measured from sending the request to the first streamed text;
generation tok/s from the first to the last text chunk over the tokens after the first
(``usage.completion_tokens`` when the server reports it, else the number of text chunks).
Prompt processing cannot be separated from HTTP overhead here, so it is not reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from aria.bench.stats import Summary, summarize
from aria.errors import BackendError, BackendUnavailable

__all__ = ["ApiResult", "StreamSample", "bench_api", "parse_sse", "stream_completion"]


@dataclass(frozen=True)
class StreamSample:
    prompt_tokens: int | None
    gen_tokens: int
    ttft_s: float
    total_s: float

    @property
    def gen_tok_s(self) -> float:
        """Rate after the first token (the first one's wait is TTFT).

        When every token arrived in one chunk (a fast model outrunning the stream, which
        the API then sends as one catch-up chunk) there is no interval to time: the rate
        over the whole request is reported instead, a lower bound.
        """
        if self.gen_tokens <= 1:
            return 0.0  # one token: no generation rate to speak of
        streaming = self.total_s - self.ttft_s
        if streaming > 0:
            return (self.gen_tokens - 1) / streaming
        return self.gen_tokens / self.total_s if self.total_s > 0 else 0.0


@dataclass(frozen=True)
class ApiResult:
    url: str
    model: str
    samples: tuple[StreamSample, ...]

    @property
    def gen_tok_s(self) -> Summary:
        return summarize([s.gen_tok_s for s in self.samples])

    @property
    def ttft_ms(self) -> Summary:
        return summarize([s.ttft_s * 1000 for s in self.samples])

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": "api-streaming",
            "url": self.url,
            "model": self.model,
            "gen_tok_s": self.gen_tok_s.as_dict(),
            "ttft_ms": self.ttft_ms.as_dict(),
            "gen_tokens": [s.gen_tokens for s in self.samples],
            "prompt_tokens": [s.prompt_tokens for s in self.samples],
        }


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """JSON payloads of ``data:`` lines until ``data: [DONE]`` (other lines are ignored)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return
        event = json.loads(payload)
        if isinstance(event, dict):
            yield event


def stream_completion(
    client: httpx.Client, *, model: str, prompt: str, max_tokens: int
) -> StreamSample:
    """One streamed completion (greedy, usage requested).

    Raises:
        BackendUnavailable: the API could not be reached.
        BackendError: the API answered with an error.
    """
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first = last = None
    chunks = 0
    usage: dict[str, Any] = {}
    try:
        with client.stream("POST", "/v1/completions", json=body) as response:
            if response.status_code != 200:
                raise BackendError(_error_text(response))
            for event in parse_sse(response.iter_lines()):
                if event.get("error"):
                    raise BackendError(f"the API stream failed: {event['error']}")
                usage = event.get("usage") or usage
                if any(choice.get("text") for choice in event.get("choices") or []):
                    last = time.perf_counter()
                    first = first or last
                    chunks += 1
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"could not stream from {client.base_url}: {exc}") from exc
    if first is None or last is None:
        raise BackendError(f"{model} streamed no text through {client.base_url}")
    return StreamSample(
        prompt_tokens=usage.get("prompt_tokens"),
        gen_tokens=int(usage.get("completion_tokens") or chunks),
        ttft_s=first - start,
        total_s=last - start,
    )


def bench_api(
    url: str,
    *,
    model: str,
    prompt: str,
    gen_tokens: int,
    runs: int,
    warmup: int = 1,
    api_key: str | None = None,
    timeout_s: float = 300.0,
    on_run: Callable[[], None] = lambda: None,
) -> ApiResult:
    """Warm up, then ``runs`` streamed completions against the API at ``url``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    samples = []
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s) as client:
        for index in range(warmup + runs):
            sample = stream_completion(client, model=model, prompt=prompt, max_tokens=gen_tokens)
            if index >= warmup:
                samples.append(sample)
            on_run()
    return ApiResult(url, model, tuple(samples))


def _error_text(response: httpx.Response) -> str:
    response.read()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return f"the API answered HTTP {response.status_code}: {message}"
