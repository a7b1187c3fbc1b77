"""Work served for a peer decodes as if alone, whatever else the API is serving.

A peer may re-execute a greedy answer it got from this node (a spot check) and counts
any difference as cheating, so a relayed peer request (``x-aria-origin: peer``) and a
spot check's re-execution (``spotcheck``) must give a solo run's text while other
streams decode on the same backend (see docs/batching.md, "Work for peers").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aria.p2p.control import control_file, new_token
from aria.p2p.local_api import relay_headers
from tests.api.conftest import Server, make_node, running

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
NO_END = {"2": -100, "4": -100}  # </s> and <|im_end|>: generate until the limit
PROMPTS = [f"Describe {topic} in one paragraph." for topic in ("tea", "snow", "wolves", "maps")]


@pytest.fixture(scope="module")
def relayed(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[tuple[Server, str]]:
    """A served node and the control token its node process would relay peers' requests with."""
    node = make_node(tmp_path_factory.mktemp("isolation"), {"tiny": model_files["tiny"]})
    token = new_token()  # as if the node process ran: only it relays for peers
    control_file(node.paths).write_text(
        json.dumps({"port": 1, "token": token, "pid": 1, "peer_id": PEER}), encoding="utf-8"
    )
    with running(node) as live:
        yield live, token


def ask(relayed: tuple[Server, str], prompt: str, origin: str) -> tuple[str, float]:
    """A greedy answer relayed as ``origin`` and when it came back."""
    server, token = relayed
    headers = relay_headers(token, origin, peer=PEER if origin == "peer" else None)
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 40,
        "temperature": 0,
        "logit_bias": NO_END,
    }
    with server.http() as http:
        reply = http.post("/v1/chat/completions", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"], time.monotonic()


def stream_long(server: Server, prompt: str, started: threading.Event) -> float:
    """Stream 1,500 tokens; ``started`` is set at the first one. Returns when it ended."""
    body = {
        "model": "tiny",
        "prompt": prompt,
        "max_tokens": 1500,
        "temperature": 0,
        "stream": True,
        "logit_bias": NO_END,
    }
    with server.http() as http, http.stream("POST", "/v1/completions", json=body) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                started.set()
    return time.monotonic()


def test_peer_and_spot_check_answers_match_solo_while_others_stream(
    relayed: tuple[Server, str],
) -> None:
    server = relayed[0]
    solo = {prompt: ask(relayed, prompt, "peer")[0] for prompt in PROMPTS}
    assert all(len(text) > 40 for text in solo.values())
    for prompt in PROMPTS:
        with ThreadPoolExecutor(max_workers=6) as pool:
            flags = [threading.Event() for _ in range(4)]
            others = [
                pool.submit(stream_long, server, f"story {n} about {prompt}", flag)
                for n, flag in enumerate(flags)
            ]
            assert all(flag.wait(120) for flag in flags)
            # Both at once: they take turns in the isolated lane.
            peer = pool.submit(ask, relayed, prompt, "peer")
            check = pool.submit(ask, relayed, prompt, "spotcheck")
            answers = [peer.result(timeout=300), check.result(timeout=300)]
            ended = [other.result(timeout=300) for other in others]
        assert [text for text, _ in answers] == [solo[prompt]] * 2, prompt
        assert min(ended) > max(at for _, at in answers)  # the four streams ran throughout
