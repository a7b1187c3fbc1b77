"""Serve one model split over RPC workers, through the ordinary backend dispatcher.

The split model runs in a normal backend worker process (``aria.backends.worker``)
whose launch options carry the placement: the RPC servers to register, the
``tensor_split`` and the offload count. ggml-rpc aborts the process that loses a
worker, so a dead worker takes down only that backend process, never the API.

:class:`SplitModel` keeps the set of workers found dead. When generation fails, it
probes every worker of the placement (:mod:`aria.rpc.probe`), remembers the ones
that no longer answer, and raises ``BackendCrashed`` naming them; the dispatcher has
already marked the backend failed, so the next request plans again without them and
the dispatcher starts a fresh process with the new placement. A load that fails
because a worker is gone is re-planned at once, within the same request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

import anyio

from aria.backends import Dispatcher, Lease, WorkerLaunch
from aria.catalog import ModelId
from aria.errors import AriaError, BackendCrashed, BackendUnavailable
from aria.rpc.probe import probe_workers
from aria.split.layout import ModelLayout
from aria.split.placement import Candidate, LocalNode, Placement, PlanPolicy
from aria.split.planner import plan_placement

__all__ = ["SplitLease", "SplitModel"]

Diagnose = Callable[[Placement], Awaitable[dict[str, str]]]


@dataclass(frozen=True, kw_only=True)
class SplitLease(Lease):
    """A :class:`Lease` whose crashes are explained in terms of the RPC workers."""

    placement: Placement
    explain: Callable[[Placement, BackendCrashed], Awaitable[BackendCrashed]]

    async def _guard(self, call: Awaitable[Any]) -> Any:
        try:
            return await super()._guard(call)
        except BackendCrashed as exc:
            raise await self.explain(self.placement, exc) from None


async def _probe_placement(placement: Placement) -> dict[str, str]:
    """Endpoints of ``placement`` that no longer answer, with the reason."""
    results = await anyio.to_thread.run_sync(probe_workers, placement.endpoints)
    return {ep: r.message for ep, r in results.items() if isinstance(r, AriaError)}


class SplitModel:
    """One model served over RPC workers, re-planned whenever a worker is lost.

    ``candidates`` is called for every plan, so workers discovered later (the p2p
    layer's adverts) are considered; workers found dead are excluded from then on.
    """

    def __init__(
        self,
        *,
        model_id: ModelId,
        layout: ModelLayout,
        base_launch: WorkerLaunch,
        local: LocalNode,
        candidates: Callable[[], Sequence[Candidate]],
        policy: PlanPolicy,
        diagnose: Diagnose = _probe_placement,
    ) -> None:
        self.model_id = model_id
        self.layout = layout
        self.base_launch = base_launch
        self.local = local
        self.candidates = candidates
        self.policy = replace(policy, n_ctx=base_launch.n_ctx)
        self.dead: dict[str, str] = {}
        self._diagnose = diagnose

    def plan(self) -> Placement:
        """The placement over the workers not known dead.

        Raises:
            PlacementRefused: they cannot hold the model (the message says why).
        """
        alive = [c for c in self.candidates() if c.endpoint not in self.dead]
        return plan_placement(self.layout, self.local, alive, self.policy)

    def launch_for(self, placement: Placement) -> WorkerLaunch:
        """The backend worker's options for ``placement`` (unchanged when it is not split)."""
        if not placement.shares:
            return self.base_launch
        return replace(
            self.base_launch,
            engine="llama",
            n_gpu_layers=placement.n_gpu_layers,
            rpc_servers=placement.endpoints,
            tensor_split=placement.tensor_split,
        )

    @asynccontextmanager
    async def lease(self, dispatcher: Dispatcher) -> AsyncIterator[SplitLease]:
        """Exclusive use of the split backend, started (or re-planned) if needed.

        Raises:
            PlacementRefused: no set of live workers can hold the model.
            BackendUnavailable: the backend failed to load for another reason.
        """
        async with AsyncExitStack() as stack:
            while True:
                placement = self.plan()
                launch = self.launch_for(placement)
                try:
                    lease = await stack.enter_async_context(
                        dispatcher.lease(self.model_id, launch, placement.local_bytes)
                    )
                    break
                except BackendUnavailable as exc:
                    if not placement.shares:
                        raise
                    # A worker that vanished before or during the load: plan without it.
                    if not await self._record_dead(placement):
                        raise BackendUnavailable(
                            f"{exc.message}; every RPC worker of the plan still answers (a "
                            "worker refuses allocations beyond the memory its operator offered)"
                        ) from None
            yield SplitLease(
                **{f.name: getattr(lease, f.name) for f in fields(Lease)},
                placement=placement,
                explain=self._explain,
            )

    async def _record_dead(self, placement: Placement) -> dict[str, str]:
        lost = await self._diagnose(placement)
        self.dead.update(lost)
        return lost

    async def _explain(self, placement: Placement, crash: BackendCrashed) -> BackendCrashed:
        lost = await self._record_dead(placement)
        if not lost:
            return crash
        names = ", ".join(
            f"{share.endpoint} (peer {share.peer_id})"
            for share in placement.shares
            if share.endpoint in lost
        )
        return BackendCrashed(
            f"the RPC worker {names} stopped answering while generating with {self.model_id}; "
            "this request failed, the next one is planned without it"
        )
