"""The dispatcher: one supervised worker process per loaded model.

* Lazy start: a backend is spawned by the first request for its model, which waits
  for the load and a health ping; requests arriving meanwhile queue behind it.
* Continuous batching: a backend serves as many requests at once as its worker has
  slots (it decodes them in one batch); the others wait in a FIFO
  (``anyio.CapacityLimiter``: first come, first served). Different backends serve in
  parallel. ``queued`` counts waiting and in-flight requests (the queue depth in
  ``/metrics``).
* Memory: a backend claims its model's memory floor plus the K/V budget its launch
  grants for parallel slots; once loaded, the floor plus the K/V its slots really took.
* Back-pressure: at most ``max_waiting`` requests wait per backend (requests being
  served do not count, so this survives serving several at once); one more is refused
  with ``RateLimited`` and a retry estimate from the backend's recent lease times.
* Memory: admission is decided by :func:`aria.backends.plan.plan_backends` from the
  node's budget, each model's memory floor and ``max_loaded``: least-recently-used
  idle backends are evicted to make room, else the request is refused (503).
* Idle time-out: a housekeeping task unloads backends idle for ``idle_timeout_s``
  and clears failed ones.
* Crashes: a worker that dies marks its backend ``Failed``; the request in flight gets
  ``BackendCrashed`` and the next request restarts the process.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio

from aria.backends.channel import WorkerChannel
from aria.backends.launch import WorkerLaunch
from aria.backends.lease import Lease
from aria.backends.plan import Desired, Limits, Observed, Refuse, Start, Stop, plan_backends
from aria.backends.process import WorkerProcess, describe_exit
from aria.backends.protocol import WorkerInfo
from aria.backends.states import BackendState, Busy, Failed, Loading, Ready, Starting, state_name
from aria.catalog.entries import ModelId
from aria.errors import BackendUnavailable, RateLimited

__all__ = ["BackendView", "Dispatcher"]

# Smoothing of the per-backend lease time behind Retry-After estimates.
_HOLD_WEIGHT = 0.2


@dataclass
class _Backend:
    model_id: ModelId
    launch: WorkerLaunch
    floor_bytes: int  # the model's own memory floor
    last_used: float
    # One token per slot (1 until the worker says how many it has).
    slots: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))
    starting: anyio.Lock = field(default_factory=anyio.Lock)
    state: BackendState = field(default_factory=Starting)
    process: WorkerProcess | None = None
    channel: WorkerChannel | None = None
    info: WorkerInfo | None = None
    queued: int = 0
    active: int = 0  # requests holding the backend now (``queued`` includes them)
    hold_s: float = 1.0  # recent time a request held the backend (moving average)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def ram_bytes(self) -> int:
        """What the backend counts against the budget: its floor plus its K/V cache
        (granted before it loads, measured after)."""
        if self.info is not None and isinstance(self.state, Ready | Busy):
            return self.floor_bytes + self.info.kv_bytes
        return self.floor_bytes + (self.launch.kv_budget_bytes or 0)

    @property
    def waiting(self) -> int:
        return self.queued - self.active

    def retry_after_s(self) -> float:
        """When a refused request could expect a place: the queue ahead of it drained."""
        rounds = (self.waiting + 1) / max(1.0, self.slots.total_tokens)
        return min(60.0, max(1.0, self.hold_s * rounds))


@dataclass(frozen=True)
class BackendView:
    """A backend as reported by ``/health`` and ``/metrics``."""

    model_id: ModelId
    state: str
    detail: str
    pid: int | None
    queued: int
    ram_bytes: int
    engine: str
    threads: int
    n_ctx: int | None
    slots: int | None = None  # requests decoded together, once loaded
    active: int = 0  # requests being decoded now
    kv_bytes: int | None = None  # K/V cache of every slot, once loaded


class Dispatcher:
    """Supervises backend processes; use inside ``async with dispatcher.running()``."""

    def __init__(
        self,
        limits: Limits,
        logs_dir: Path,
        *,
        start_timeout_s: float = 300.0,
        max_waiting: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._max_waiting = max_waiting
        self._logs_dir = logs_dir
        self._start_timeout_s = start_timeout_s
        self._clock = clock
        self._backends: dict[ModelId, _Backend] = {}
        self._admission = anyio.Lock()
        # starts, crashes, evict, idle, failed: lifetime counts for /metrics.
        self.events: Counter[str] = Counter()

    @property
    def limits(self) -> Limits:
        return self._limits

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Dispatcher]:
        """Run housekeeping; on exit stop every backend process.

        The block's own exception is re-raised as is, not wrapped in the task group's
        ExceptionGroup, so callers can still ``except AriaError``.
        """
        failure: BaseException | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._housekeeping)
            try:
                yield self
            except BaseException as exc:
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    raise
                failure = exc
            finally:
                group.cancel_scope.cancel()
                await self.stop_all()
        if failure is not None:
            raise failure

    @asynccontextmanager
    async def lease(
        self, model_id: ModelId, launch: WorkerLaunch, ram_bytes: int
    ) -> AsyncIterator[Lease]:
        """Exclusive use of ``model_id``'s backend, started if needed (FIFO per backend).

        Raises:
            BackendUnavailable: it does not fit the memory budget, or failed to start.
            RateLimited: ``max_waiting`` requests already wait for this backend.
        """
        backend = await self._admit(model_id, launch, ram_bytes)
        slot = object()  # this lease's token of the backend's slots
        try:
            await backend.slots.acquire_on_behalf_of(slot)
            try:
                async with backend.starting:
                    await self._ensure_started(backend)
                assert backend.channel is not None and backend.info is not None
                backend.state = Busy()
                backend.active += 1
                taken = self._clock()
                try:
                    yield Lease(
                        model_id=model_id,
                        info=backend.info,
                        channel=backend.channel,
                        next_id=partial(next, backend.ids),
                        on_crash=partial(self._crashed, backend, backend.channel.process),
                    )
                finally:
                    backend.active -= 1
                    if isinstance(backend.state, Busy) and not backend.active:
                        backend.state = Ready()
                    backend.last_used = self._clock()
                    held = backend.last_used - taken
                    backend.hold_s += _HOLD_WEIGHT * (held - backend.hold_s)
            finally:
                backend.slots.release_on_behalf_of(slot)
        finally:
            backend.queued -= 1

    def backends(self) -> list[BackendView]:
        """Every known backend, freshest state first checked against its process."""
        self._observe()
        return [
            BackendView(
                model_id=b.model_id,
                state=state_name(b.state),
                detail=b.state.reason if isinstance(b.state, Failed) else "",
                pid=b.process.pid if b.process is not None else None,
                queued=b.queued,
                ram_bytes=b.ram_bytes,
                engine=b.launch.engine,
                threads=b.launch.threads,
                n_ctx=b.info.n_ctx if b.info is not None else None,
                slots=b.info.slots if b.info is not None else None,
                active=b.active,
                kv_bytes=b.info.kv_bytes if b.info is not None else None,
            )
            for b in self._backends.values()
        ]

    def pid_of(self, model_id: ModelId) -> int | None:
        backend = self._backends.get(model_id)
        return backend.process.pid if backend and backend.process else None

    async def stop_all(self) -> None:
        with anyio.CancelScope(shield=True):
            async with self._admission:
                for model_id in list(self._backends):
                    await self._remove(model_id, "shutdown")

    # -- supervision ---------------------------------------------------------------------

    def _observe(self) -> list[Observed]:
        for backend in self._backends.values():
            process = backend.process
            if (
                isinstance(backend.state, Ready | Busy)
                and process
                and process.returncode is not None
            ):
                backend.state = Failed(
                    f"the backend process stopped: {describe_exit(process.returncode)}"
                )
        return [
            Observed(b.model_id, b.state, b.ram_bytes, b.last_used, b.queued)
            for b in self._backends.values()
        ]

    async def _admit(self, model_id: ModelId, launch: WorkerLaunch, ram_bytes: int) -> _Backend:
        async with self._admission:
            self._check_queue(self._backends.get(model_id))
            while True:
                claim = ram_bytes + (launch.kv_budget_bytes or 0)
                action = plan_backends(
                    Desired(model_id, claim), self._observe(), self._limits, self._clock()
                )
                match action:
                    case Stop(model_id=victim, reason=reason):
                        await self._remove(victim, reason)
                    case Refuse(reason=reason):
                        raise BackendUnavailable(reason)
                    case Start() | None:
                        break
            backend = self._backends.get(model_id)
            if backend is None:
                backend = _Backend(model_id, launch, ram_bytes, last_used=self._clock())
                self._backends[model_id] = backend
            elif isinstance(action, Start):  # restart a failed backend, with today's options
                backend.launch, backend.floor_bytes, backend.state = launch, ram_bytes, Starting()
            backend.queued += 1
            return backend

    def _check_queue(self, backend: _Backend | None) -> None:
        if backend is None or self._max_waiting is None:
            return
        if backend.waiting >= self._max_waiting:
            retry = backend.retry_after_s()
            raise RateLimited(
                f"model {backend.model_id} already has {backend.waiting} requests waiting, "
                f"this node's limit (inference.max_waiting); retry in about {retry:.0f} s",
                retry_after_s=retry,
            )

    async def _ensure_started(self, backend: _Backend) -> None:
        alive = backend.process is not None and backend.process.returncode is None
        if alive and isinstance(backend.state, Ready | Busy):
            return
        if backend.process is not None:
            await backend.process.kill()
            backend.process = backend.channel = None
        log = self._logs_dir / f"backend-{backend.model_id}.log"
        self.events["starts"] += 1
        try:
            backend.state = Loading()
            backend.process = await WorkerProcess.spawn(backend.launch, log)
            backend.info = await backend.process.handshake(self._start_timeout_s)
        except BaseException as exc:
            reason = exc.message if isinstance(exc, BackendUnavailable) else "start interrupted"
            backend.state = Failed(reason)
            backend.info = None
            if backend.process is not None:
                await backend.process.kill()
                backend.process = None
            if isinstance(exc, BackendUnavailable):
                raise BackendUnavailable(
                    f"model {backend.model_id} could not start: {reason} (log: {log})"
                ) from None
            raise
        backend.channel = WorkerChannel(backend.process)
        backend.slots.total_tokens = backend.info.slots
        backend.state = Ready()

    async def _crashed(self, backend: _Backend, process: WorkerProcess, reason: str) -> None:
        """``process`` died; every request it was serving reports it, once counts."""
        if backend.process is not process:
            return
        self.events["crashes"] += 1
        backend.state = Failed(reason)
        await process.kill()
        backend.process = backend.channel = None

    async def _remove(self, model_id: ModelId, reason: str) -> None:
        backend = self._backends.pop(model_id)
        self.events[reason] += 1
        if backend.process is not None:
            await backend.process.stop()
            backend.process = None

    async def _housekeeping(self) -> None:
        tick = max(0.05, min(self._limits.idle_timeout_s / 4, 15.0))
        while True:
            await anyio.sleep(tick)
            async with self._admission:
                while (
                    action := plan_backends(None, self._observe(), self._limits, self._clock())
                ) is not None:
                    if not isinstance(action, Stop):
                        break
                    await self._remove(action.model_id, action.reason)
