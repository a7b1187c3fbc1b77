"""Automatic split inference: serve an installed model over peers when it does not fit here.

:class:`aria.node.Node` calls :func:`split_lease` instead of a local lease when a model's
memory floor exceeds the node's budget (and the operator lets prompts reach peers,
``use.prompts_may_leave`` in the consent contract: the workers see the prompt's
activations), or when the caller
forces it (``aria model run --distributed``). Candidates come from the node running on
this ARIA home (:mod:`aria.split.network`); the lease is an ordinary backend lease, so
streaming, cancellation and the fallback chain are unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from aria.backends import Lease
from aria.errors import PlacementRefused
from aria.split.network import network_candidates
from aria.split.orchestrator import SplitLease, SplitModel
from aria.split.placement import Placement, PlanPolicy
from aria.split.service import require_shareable, split_model_for

if TYPE_CHECKING:
    from aria.node import Node
    from aria.store import InstalledModel

__all__ = ["describe_split", "needs_split", "placement_of", "split_lease"]

_GIB = 1024**3

# Forced runs send every block to peers (that is what the caller wants to exercise).
FORCED_POLICY = PlanPolicy(max_local_layers=0)
AUTO_POLICY = PlanPolicy()


def needs_split(node: Node, model: InstalledModel) -> bool:
    """Does ``model``'s memory floor exceed what the node's dispatcher may give it?"""
    return int(model.entry.memory.ram_gb * _GIB) > node.dispatcher.limits.budget_bytes


@asynccontextmanager
async def split_lease(
    node: Node, model: InstalledModel, *, forced: bool = False
) -> AsyncIterator[SplitLease]:
    """A lease on ``model`` split over the peers that lend compute.

    Raises:
        PlacementRefused: the model's licence does not allow sharing it, no node runs
        here, no peer lends compute, prompts may not reach peers, or the lenders cannot
        hold the model (the message says which).
        BackendUnavailable: the split backend failed to load.
    """
    why = (
        f"{model.entry.id} was asked to run distributed"
        if forced
        else (
            f"{model.entry.id} needs {model.entry.memory.ram_gb:.3g} GB but this node's "
            f"memory budget is {node.dispatcher.limits.budget_bytes / _GIB:.3g} GB"
        )
    )
    require_shareable(model)  # before any peer is even looked for
    if not forced and not node.prompts_may_leave():
        raise PlacementRefused(
            f"{why}; splitting it over peers is off (their workers would see the "
            "prompt's activations): enable it with `aria node share --use-peers on`"
        )
    found = await anyio.to_thread.run_sync(network_candidates, node.paths)
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
        lambda: split_model_for(node, model.entry.id, lambda: found.candidates, policy)
    )
    try:
        split.plan()  # refuse here, with the reason, before any backend starts
    except PlacementRefused as exc:
        raise PlacementRefused(f"{why}; {exc.message}") from None
    async with split.lease(node.dispatcher) as lease:
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
