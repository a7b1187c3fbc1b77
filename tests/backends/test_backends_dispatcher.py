"""The dispatcher with real worker processes: lazy start, crashes, memory, idle, fairness.

Each test runs on the model-less fake engine (no llama.cpp needed) and on llama.cpp.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.abc
import pytest

from aria.backends import Dispatcher, DoneEvent, GenerationJob, Limits, TokenEvent, WorkerLaunch
from aria.catalog import ModelId
from aria.errors import BackendCrashed, BackendUnavailable, RateLimited, RequestFailed

pytestmark = pytest.mark.anyio

GB = 1024**3
JOB = GenerationJob(messages=({"role": "user", "content": "hi"},), max_tokens=4, temperature=0.0)
A, B = ModelId("a"), ModelId("b")


@pytest.fixture(params=["fake", "llama"])
def launch(tiny_gguf: Path, request: pytest.FixtureRequest) -> WorkerLaunch:
    return WorkerLaunch(model_path=str(tiny_gguf), n_ctx=512, threads=1, engine=request.param)


def dispatcher(
    tmp_path: Path, *, budget_gb: float = 4, max_loaded: int = 4, idle_s: float = 600
) -> Dispatcher:
    return Dispatcher(Limits(int(budget_gb * GB), max_loaded, idle_s), tmp_path / "logs")


async def generate(
    d: Dispatcher, model: ModelId, launch: WorkerLaunch, job: GenerationJob = JOB, ram_gb: float = 1
) -> str:
    async with d.lease(model, launch, int(ram_gb * GB)) as lease:
        generation = await lease.generate(job)
        text = ""
        while not isinstance(event := await generation.next_event(), DoneEvent):
            text += event.text
        return text


async def hold(
    d: Dispatcher,
    launch: WorkerLaunch,
    release: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    """Hold model A's backend until ``release`` (so that a queue forms behind it)."""
    async with d.lease(A, launch, GB):
        task_status.started()
        await release.wait()


async def test_lazy_start_then_reuse(tmp_path: Path, launch: WorkerLaunch) -> None:
    d = dispatcher(tmp_path)
    async with d.running():
        assert d.backends() == []
        first = await generate(d, A, launch)
        pid = d.pid_of(A)
        assert await generate(d, A, launch) == first
        assert d.pid_of(A) == pid and d.events["starts"] == 1
        assert [v.state for v in d.backends()] == ["ready"]
    assert pid is not None and not _alive(pid)


async def test_crash_mid_generation_then_restart(tmp_path: Path, launch: WorkerLaunch) -> None:
    d = dispatcher(tmp_path)
    long_job = GenerationJob(messages=JOB.messages, max_tokens=500, temperature=0.0)
    async with d.running():
        with pytest.raises(BackendCrashed, match="SIGKILL"):
            async with d.lease(A, launch, GB) as lease:
                generation = await lease.generate(long_job)
                assert isinstance(await generation.next_event(), TokenEvent)
                os.kill(lease.process.pid, signal.SIGKILL)
                while True:
                    await generation.next_event()
        assert [v.state for v in d.backends()] == ["failed"]
        assert await generate(d, A, launch)  # the next request starts a fresh process
        assert d.events["crashes"] == 1 and d.events["starts"] == 2


async def test_idle_crash_is_noticed_and_restarted(tmp_path: Path, launch: WorkerLaunch) -> None:
    d = dispatcher(tmp_path)
    async with d.running():
        await generate(d, A, launch)
        pid = d.pid_of(A)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with anyio.fail_after(10):
            while d.backends()[0].state != "failed":
                await anyio.sleep(0.05)
        assert await generate(d, A, launch)
        assert d.pid_of(A) != pid


async def test_lru_eviction_to_fit_the_budget(tmp_path: Path, launch: WorkerLaunch) -> None:
    d = dispatcher(tmp_path, budget_gb=1.5)
    async with d.running():
        await generate(d, A, launch)
        pid_a = d.pid_of(A)
        await generate(d, B, launch)
        assert [v.model_id for v in d.backends()] == [B]
        assert pid_a is not None and not _alive(pid_a)
        assert d.events["evict"] == 1


async def test_refuses_when_busy_backends_fill_the_budget(
    tmp_path: Path, launch: WorkerLaunch
) -> None:
    d = dispatcher(tmp_path, budget_gb=1.5)
    async with d.running(), d.lease(A, launch, GB):
        with pytest.raises(BackendUnavailable, match="busy"):
            async with d.lease(B, launch, GB):
                pass
        with pytest.raises(BackendUnavailable, match="budget is 1.5 GB"):
            async with d.lease(B, launch, 2 * GB):
                pass


async def test_idle_backends_are_unloaded(tmp_path: Path, launch: WorkerLaunch) -> None:
    d = dispatcher(tmp_path, idle_s=0.3)
    async with d.running():
        await generate(d, A, launch)
        with anyio.fail_after(10):
            while d.backends():
                await anyio.sleep(0.05)
        assert d.events["idle"] == 1


@pytest.mark.parametrize("launch", ["llama"], indirect=True)  # the fake engine has one slot
async def test_a_backend_serves_as_many_requests_at_once_as_it_has_slots(
    tmp_path: Path, launch: WorkerLaunch
) -> None:
    d = dispatcher(tmp_path)
    three = replace(launch, parallel=3)
    release = anyio.Event()
    async with d.running():
        async with anyio.create_task_group() as group:
            for _ in range(3):
                await group.start(hold, d, three, release)
            (view,) = d.backends()
            assert (view.state, view.slots, view.active, view.queued) == ("busy", 3, 3, 3)
            assert view.kv_bytes and view.ram_bytes == GB + view.kv_bytes
            with anyio.move_on_after(0.5) as waited:  # the fourth waits for a slot
                async with d.lease(A, three, GB):
                    pass
            assert waited.cancelled_caught
            release.set()
        assert [(v.state, v.active, v.queued) for v in d.backends()] == [("ready", 0, 0)]


async def test_requests_beyond_the_slots_are_served_first_come_first_served(
    tmp_path: Path, launch: WorkerLaunch
) -> None:
    d = dispatcher(tmp_path)
    one = replace(launch, parallel=1)  # one slot: each request runs alone, in order
    order: list[int] = []
    release = anyio.Event()

    async def request(n: int) -> None:
        async with d.lease(A, one, GB):
            order.append(n)

    async with d.running(), anyio.create_task_group() as group:
        await group.start(hold, d, one, release)
        for n in range(5):
            group.start_soon(request, n)
            await anyio.sleep(0.05)
        assert d.backends()[0].queued == 6  # five waiting plus the holder
        release.set()
    assert order == [0, 1, 2, 3, 4]


def test_different_backends_serve_in_parallel(tmp_path: Path, launch: WorkerLaunch) -> None:
    import trio

    async def main() -> None:
        d = dispatcher(tmp_path)
        async with d.running(), d.lease(A, launch, GB):
            with trio.fail_after(60):  # B is not stuck behind A's lease
                assert await generate(d, B, launch)

    trio.run(main)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_request_failure_does_not_retire_the_backend(
    tmp_path: Path, launch: WorkerLaunch
) -> None:
    d = dispatcher(tmp_path)
    broken = GenerationJob(messages=JOB.messages, max_tokens=4, stop=(1,))  # type: ignore[arg-type]
    async with d.running():
        first = await generate(d, A, launch)
        pid = d.pid_of(A)
        with pytest.raises(RequestFailed):
            await generate(d, A, launch, broken)
        assert d.pid_of(A) == pid and [v.state for v in d.backends()] == ["ready"]
        assert d.events["crashes"] == 0 and d.events["starts"] == 1
        assert await generate(d, A, launch) == first


async def test_waiting_requests_beyond_the_bound_are_refused_with_a_retry_estimate(
    tmp_path: Path, launch: WorkerLaunch
) -> None:
    d = Dispatcher(Limits(4 * GB, 4, 600), tmp_path / "logs", max_waiting=2)
    launch = replace(launch, parallel=1)
    release = anyio.Event()
    served: list[int] = []

    async def waiter(n: int) -> None:
        async with d.lease(A, launch, GB):
            served.append(n)

    async with d.running(), anyio.create_task_group() as group:
        await group.start(hold, d, launch, release)
        for n in range(2):
            group.start_soon(waiter, n)
            await anyio.sleep(0.05)  # trio may run tasks started together in any order
        for _ in range(5):  # the third waiter and beyond: refused at once, nothing queued
            with pytest.raises(RateLimited) as refused:
                async with d.lease(A, launch, GB):
                    pass
            assert refused.value.retry_after_s >= 1.0
            assert "inference.max_waiting" in refused.value.message
        assert d.backends()[0].queued == 3
        async with d.lease(B, launch, GB):  # another model's queue is its own
            pass
        release.set()
    assert served == [0, 1]
