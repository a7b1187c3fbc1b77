"""Split inference for a chain entry: a lease on an installed model spread over lenders.

The node's placement decision (:mod:`aria.router.placement`) marks an installed model
``split`` when its memory floor exceeds this node's budget, or when the caller forces it
(``aria model run --distributed``); :func:`split_lease` then opens that entry. It takes
the values it needs (the model, its launch options, the dispatcher, whether prompts may
leave — ``use.prompts_may_leave`` of the consent contract: the workers see the prompt's
activations — and the home whose node finds lenders), never the node itself. Candidates
come from the node running on this ARIA home (:mod:`aria.split.network`); the lease is
an ordinary backend lease, so streaming, cancellation and the fallback chain are
unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from aria.backends import Dispatcher, Lease, WorkerLaunch
from aria.config import AriaPaths
from aria.errors import PlacementRefused
from aria.split.network import network_candidates
from aria.split.orchestrator import SplitLease, SplitModel
from aria.split.placement import Placement, PlanPolicy
from aria.split.service import require_shareable, split_model_for

if TYPE_CHECKING:
    from aria.store import InstalledModel

__all__ = ["describe_split", "placement_of", "split_lease"]

_GIB = 1024**3

# Forced runs send every block to peers (that is what the caller wants to exercise).
FORCED_POLICY = PlanPolicy(max_local_layers=0)
AUTO_POLICY = PlanPolicy()


@asynccontextmanager
async def split_lease(
    model: InstalledModel,
    launch: WorkerLaunch,
    *,
    dispatcher: Dispatcher,
    paths: AriaPaths,
    use_peers: bool,
    forced: bool = False,
) -> AsyncIterator[SplitLease]:
    """A lease on ``model`` split over the peers that lend compute to the node on ``paths``.

    Raises:
        PlacementRefused: the model's licence does not allow sharing it, no node runs
        here, no peer lends compute, prompts may not reach peers (``use_peers``: the
        contract's ``use.prompts_may_leave``, off and not ``forced``), or the lenders
        cannot hold the model (the message says which).
        BackendUnavailable: the split backend failed to load.
    """
    budget = dispatcher.limits.budget_bytes
    why = (
        f"{model.entry.id} was asked to run distributed"
        if forced
        else (
            f"{model.entry.id} needs {model.entry.memory.ram_gb:.3g} GB but this node's "
            f"memory budget is {budget / _GIB:.3g} GB"
        )
    )
    require_shareable(model)  # before any peer is even looked for
    if not forced and not use_peers:
        raise PlacementRefused(
            f"{why}; splitting it over peers is off (their workers would see the "
            "prompt's activations): enable it with `aria node share --use-peers on`"
        )
    found = await anyio.to_thread.run_sync(network_candidates, paths)
    if not found.node_running:
        raise PlacementRefused(
            f"{why}; no ARIA node runs on this home to find peers that lend compute; "
            "start one with `aria node start`"
        )
    if not found.lenders:
        notes = "; ".join(found.notes())
        raise PlacementRefused(
            f"{why}; no peer lends compute for split inference "
            f"({len(found.candidates)} verified peer(s) without consent"
            + (f"; {notes}" if notes else "")
            + ")"
        )
    policy = FORCED_POLICY if forced else AUTO_POLICY
    split: SplitModel = await anyio.to_thread.run_sync(
        lambda: split_model_for(
            model, launch, lambda: found.candidates, policy, local_memory_bytes=budget
        )
    )
    try:
        split.plan()  # refuse here, with the reason, before any backend starts
    except PlacementRefused as exc:
        raise PlacementRefused(f"{why}; {exc.message}") from None
    async with split.lease(dispatcher) as lease:
        yield lease


def describe_split(placement: Placement) -> str:
    """``x-aria-split``: this node's layers, then each peer's (``+head``: the output head)."""
    parts = [f"local={placement.local_layers}"]
    for share in placement.shares:
        head = "+head" if share.holds_output else ""
        parts.append(f"{share.peer_id}={share.layers}{head}")
    return "; ".join(parts)


def placement_of(lease: Lease) -> Placement | None:
    """The placement of a lease that really is split over peers (None otherwise)."""
    if isinstance(lease, SplitLease) and lease.placement.shares:
        return lease.placement
    return None
