"""Real split inference: backend processes over RPC worker processes on 127.0.0.1.

Each worker is its own process and ARIA_HOME; the orchestrating backend is an ordinary
``aria.backends`` worker process run by the dispatcher (this test process plays the API).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from aria.backends import Dispatcher, DoneEvent, GenerationJob, Lease, Limits, WorkerLaunch
from aria.catalog import ModelId
from aria.errors import BackendCrashed, BackendUnavailable
from aria.p2p.transport.guarded import guarded
from aria.p2p.transport.relay import Relay, TcpFarSide
from aria.rpc import RpcWorker, listening_addresses, measure_rtt
from aria.rpc.filter import FilterLimits, RpcFilter
from aria.rpc.ggml_rpc import parse_endpoint
from aria.split import (
    Candidate,
    LocalNode,
    PlanPolicy,
    SplitModel,
    candidate_from_worker,
    read_layout,
)
from tests.helpers.rpc_workers import StartWorker

pytestmark = pytest.mark.anyio

GIB = 1024**3
# Greedy, and the end-of-sequence tokens of the synthetic vocabulary are banned so the
# random-weight model always produces the full count.
JOB = GenerationJob(
    prompt="the quick brown fox",
    max_tokens=200,
    temperature=0.0,
    logit_bias={2: -100.0, 4: -100.0},
)
# Every block goes to the workers, over exactly two of them.
TWO_WORKERS = PlanPolicy(min_peers=2, max_local_layers=0)


def dispatcher(tmp_path: Path) -> Dispatcher:
    return Dispatcher(Limits(4 * GIB, 4, 600), tmp_path / "logs")


def base_launch(model: Path, n_ctx: int = 512) -> WorkerLaunch:
    return WorkerLaunch(model_path=str(model), n_ctx=n_ctx, threads=1)


def candidates(workers: Sequence[RpcWorker]) -> list[Candidate]:
    return [
        candidate_from_worker(w, peer_id=f"peer-{i}", rtt_s=measure_rtt(w.endpoint))
        for i, w in enumerate(workers)
    ]


def split_model(
    model: Path, peers: Sequence[Candidate], policy: PlanPolicy = TWO_WORKERS, n_ctx: int = 512
) -> SplitModel:
    return SplitModel(
        model_id=ModelId("tiny-split"),
        layout=read_layout(model),
        base_launch=base_launch(model, n_ctx),
        local=LocalNode(GIB, 1),
        candidates=lambda: peers,
        policy=policy,
    )


async def generate(
    lease: Lease, *, kill_after: int | None = None, victim: RpcWorker | None = None
) -> tuple[str, DoneEvent]:
    generation = await lease.generate(JOB)
    text, tokens = "", 0
    while not isinstance(event := await generation.next_event(), DoneEvent):
        text += event.text
        tokens += 1
        if victim is not None and tokens == kill_after:
            victim.kill()
    return text, event


async def local_reference(d: Dispatcher, model: Path) -> str:
    async with d.lease(ModelId("tiny-local"), base_launch(model), GIB) as lease:
        text, done = await generate(lease)
    assert done.completion_tokens == JOB.max_tokens
    return text


async def test_split_over_two_workers_matches_local_greedy_output(
    tmp_path: Path, split_gguf: Path, rpc_workers: StartWorker
) -> None:
    direct, relayed = rpc_workers(), rpc_workers()
    d = dispatcher(tmp_path)
    # The second worker is reached through a relay with the lender's ggml-rpc filter,
    # the shape of the p2p tunnel: llama.cpp's honest traffic passes it unchanged.
    relay = Relay(
        TcpFarSide(*parse_endpoint(relayed.endpoint)),
        join=guarded(lambda: RpcFilter(FilterLimits(max_alloc_bytes=relayed.ready.offered_bytes))),
    )
    async with anyio.create_task_group() as group, d.running():
        port = await group.start(relay.serve)
        tunnelled = Candidate(
            "peer-relayed", f"127.0.0.1:{port}", relayed.ready.offered_bytes, 1, 0.0
        )
        split = split_model(split_gguf, [*candidates([direct]), tunnelled])
        expected = await local_reference(d, split_gguf)
        async with split.lease(d) as lease:
            assert [s.peer_id for s in lease.placement.shares] == ["peer-0", "peer-relayed"]
            assert lease.placement.local_layers == 0
            text, done = await generate(lease)
            backend_pid = d.pid_of(ModelId("tiny-split"))
            assert backend_pid is not None
            # Nothing listens beyond loopback: workers, relay; the backend not at all.
            for pid in (direct.pid, relayed.pid, os.getpid()):
                assert {host for host, _ in listening_addresses(pid)} == {"127.0.0.1"}
            assert listening_addresses(backend_pid) == []
        group.cancel_scope.cancel()
    assert (text, done.completion_tokens) == (expected, JOB.max_tokens)
    share = lease.placement.shares[1]
    layout = read_layout(split_gguf)
    # The relayed worker's weights crossed the wire at load time.
    assert relay.stats.to_far >= sum(layout.layer_bytes[share.first_layer :]) + layout.output_bytes
    assert JOB.max_tokens is not None and relay.stats.round_trips >= JOB.max_tokens


async def test_a_split_model_decodes_several_requests_together(
    tmp_path: Path, split_gguf: Path, rpc_workers: StartWorker
) -> None:
    """Continuous batching over ggml-rpc: the workers evaluate every sequence's token of a
    step in one pass; each request gets its own, complete output."""
    split = split_model(split_gguf, candidates([rpc_workers(), rpc_workers()]))
    d = dispatcher(tmp_path)
    results: list[tuple[str, DoneEvent]] = []

    async def one() -> None:
        async with split.lease(d) as lease:
            assert lease.info.slots > 1
            results.append(await generate(lease))

    async with d.running(), anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(one)
    assert [done.completion_tokens for _, done in results] == [JOB.max_tokens] * 3
    assert all(text.strip() for text, _ in results)


async def test_worker_killed_mid_generation_fails_clearly_then_replans(
    tmp_path: Path, split_gguf: Path, rpc_workers: StartWorker
) -> None:
    workers = [rpc_workers() for _ in range(3)]
    split = split_model(split_gguf, candidates(workers))
    d = dispatcher(tmp_path)
    async with d.running():
        expected = await local_reference(d, split_gguf)
        async with split.lease(d) as lease:
            first = lease.placement.endpoints
            victim = next(w for w in workers if w.endpoint == first[0])
            with pytest.raises(BackendCrashed, match=f"RPC worker {victim.endpoint}"):
                await generate(lease, kill_after=5, victim=victim)
        assert list(split.dead) == [victim.endpoint]
        # The orchestrating side (this process, the dispatcher) is still up; the next
        # request is planned over the two live workers and gives the same text.
        async with split.lease(d) as lease:
            assert victim.endpoint not in lease.placement.endpoints
            assert len(lease.placement.shares) == 2
            text, _ = await generate(lease)
    assert text == expected
    assert d.events["crashes"] == 1


async def test_worker_dead_before_load_is_replanned_within_the_request(
    tmp_path: Path, split_gguf: Path, rpc_workers: StartWorker
) -> None:
    workers = [rpc_workers() for _ in range(3)]
    split = split_model(split_gguf, candidates(workers))
    doomed = next(w for w in workers if w.endpoint == split.plan().endpoints[0])
    doomed.kill()
    d = dispatcher(tmp_path)
    async with d.running(), split.lease(d) as lease:
        assert doomed.endpoint not in lease.placement.endpoints
        _, done = await generate(lease)
    assert done.completion_tokens == JOB.max_tokens
    assert doomed.endpoint in split.dead


async def test_a_worker_refuses_memory_beyond_its_offer(
    tmp_path: Path, split_gguf: Path, rpc_workers: StartWorker
) -> None:
    stingy = rpc_workers(memory_gb=0.01)
    # A stale or dishonest advert claims far more than the operator offered.
    claim = Candidate("peer-stingy", stingy.endpoint, GIB, 1, 0.0)
    # At context 8192 the K/V cache and scratch need far more than 10 MB plus slack.
    policy = PlanPolicy(min_peers=1, max_local_layers=0)
    split = split_model(split_gguf, [claim], policy, n_ctx=8192)
    d = dispatcher(tmp_path)
    async with d.running():
        with pytest.raises(BackendUnavailable, match="still answers"):
            async with split.lease(d):
                pass
    assert stingy.alive()
    assert "insufficient memory" in stingy.log_path.read_text()


@pytest.mark.slow
async def test_smollm2_split_over_two_workers_matches_local(
    tmp_path: Path, rpc_workers: StartWorker
) -> None:
    model = Path("/work/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if not model.exists():
        pytest.skip("the SmolLM2 development model is not on this machine")
    job = GenerationJob(
        messages=({"role": "user", "content": "What is the capital of France?"},),
        max_tokens=32,
        temperature=0.0,
    )
    workers = [rpc_workers(threads=2), rpc_workers(threads=2)]
    launch = WorkerLaunch(model_path=str(model), n_ctx=1024, threads=2)
    split = SplitModel(
        model_id=ModelId("smol-split"),
        layout=read_layout(model),
        base_launch=launch,
        local=LocalNode(GIB, 2),
        candidates=lambda: candidates(workers),
        policy=TWO_WORKERS,
    )
    d = dispatcher(tmp_path)

    async def answer(lease: Lease) -> str:
        generation = await lease.generate(job)
        text = ""
        while not isinstance(event := await generation.next_event(), DoneEvent):
            text += event.text
        return text

    async with d.running():
        async with d.lease(ModelId("smol-local"), launch, GIB) as lease:
            expected = await answer(lease)
        async with split.lease(d) as lease:
            assert len(lease.placement.shares) == 2
            text = await answer(lease)
    assert expected.strip()
    assert text == expected
