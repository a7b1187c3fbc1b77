"""The API-streaming client: SSE parsing and clear errors (the live API is tested in CLI tests)."""

from __future__ import annotations

import socket

import httpx
import pytest

from aria.bench.api_mode import StreamSample, parse_sse, stream_completion
from aria.errors import BackendUnavailable


def test_parse_sse_yields_payloads_until_done() -> None:
    lines = [
        ": keep-alive comment",
        'data: {"choices": [{"text": "Hel"}]}',
        "",
        'data: {"choices": [{"text": "lo"}]}',
        'data: {"choices": [], "usage": {"completion_tokens": 2, "prompt_tokens": 5}}',
        "data: [DONE]",
        'data: {"choices": [{"text": "after done"}]}',
    ]
    events = list(parse_sse(lines))
    assert len(events) == 3
    assert events[2]["usage"]["completion_tokens"] == 2


def test_stream_rate_counts_tokens_after_the_first() -> None:
    sample = StreamSample(prompt_tokens=5, gen_tokens=11, ttft_s=0.5, total_s=1.5)
    assert sample.gen_tok_s == pytest.approx(10.0)
    assert StreamSample(None, 1, 0.5, 0.5).gen_tok_s == 0.0


def test_tokens_delivered_in_one_chunk_report_the_whole_request_rate() -> None:
    # A fast model outruns the stream: all 8 tokens arrive in one catch-up chunk.
    assert StreamSample(None, 8, 0.25, 0.25).gen_tok_s == pytest.approx(32.0)


def test_unreachable_api_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        pytest.raises(BackendUnavailable, match="could not stream"),
    ):
        stream_completion(client, model="m", prompt="hi", max_tokens=4)
