"""Split inference for one installed model: candidates, plan, served model.

This is where the node's facts (the model, its launch options, the memory this node may
give it) meet the RPC workers it may use; the caller passes those values (it never hands
over the node itself). Workers come from ``--worker HOST:PORT[@GB]`` options (probed over
ggml-rpc) and from the peer network's lenders (:mod:`aria.split.network`); both become
planner :class:`~aria.split.placement.Candidate` values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aria.backends import WorkerLaunch
from aria.catalog import Allowed, ModelId, Use, evaluate
from aria.errors import AriaError, ConfigError, PlacementRefused
from aria.rpc.ggml_rpc import parse_endpoint
from aria.rpc.probe import probe_workers
from aria.split.gguf_layers import read_layout
from aria.split.orchestrator import SplitModel
from aria.split.placement import Candidate, LocalNode, PlanPolicy

if TYPE_CHECKING:
    from aria.rpc.workers import RpcWorker
    from aria.store import InstalledModel

__all__ = [
    "WorkerSpec",
    "candidate_from_worker",
    "probe_candidates",
    "require_shareable",
    "split_model_for",
]

_GIB = 1024**3


@dataclass(frozen=True)
class WorkerSpec:
    """An RPC worker named on the command line, with its operator's offer if known."""

    endpoint: str
    offered_gb: float | None = None

    @classmethod
    def parse(cls, text: str) -> WorkerSpec:
        """``HOST:PORT`` or ``HOST:PORT@GB``.

        Raises:
            ConfigError: not of that form.
        """
        endpoint, at, offer = text.partition("@")
        parse_endpoint(endpoint)
        if not at:
            return cls(endpoint)
        try:
            offered = float(offer)
        except ValueError:
            offered = -1.0
        if not offered > 0:
            raise ConfigError(f"{text!r}: the memory after '@' must be a positive number of GB")
        return cls(endpoint, offered)


def probe_candidates(
    specs: Sequence[WorkerSpec], *, timeout_s: float = 5.0
) -> tuple[list[Candidate], dict[str, str]]:
    """Probe each worker; returns the ones that answered and, for the rest, why not.

    A worker's offer is the operator's (``@GB``) capped by the memory its device
    reports; its thread count is unknown over ggml-rpc and taken as 1.
    """
    results = probe_workers([spec.endpoint for spec in specs], timeout_s=timeout_s)
    candidates: list[Candidate] = []
    unreachable: dict[str, str] = {}
    for spec in specs:
        result = results[spec.endpoint]
        if isinstance(result, AriaError):
            unreachable[spec.endpoint] = result.message
            continue
        offered = result.free_bytes
        if spec.offered_gb is not None:
            offered = min(offered, int(spec.offered_gb * _GIB))
        candidates.append(Candidate(spec.endpoint, spec.endpoint, offered, 1, result.rtt_s))
    return candidates, unreachable


def candidate_from_worker(worker: RpcWorker, *, peer_id: str, rtt_s: float) -> Candidate:
    """A worker this process started: its announced offer and threads are known exactly."""
    ready = worker.ready
    return Candidate(peer_id, ready.endpoint, ready.offered_bytes, ready.threads, rtt_s)


def require_shareable(model: InstalledModel) -> None:
    """Refuse to split a model whose licence does not allow sending its weights to peers.

    Raises:
        PlacementRefused: the licence is not green (the message names it).
    """
    verdict = evaluate(model.manifest.licence, Use.SHARE)
    if not isinstance(verdict, Allowed):
        raise PlacementRefused(
            f"{model.entry.id} cannot be split over other machines: its {verdict.reason}"
        )


def split_model_for(
    model: InstalledModel,
    launch: WorkerLaunch,
    candidates: Callable[[], Sequence[Candidate]],
    policy: PlanPolicy,
    *,
    local_memory_bytes: int,
) -> SplitModel:
    """A :class:`SplitModel` for an installed ``model`` run with ``launch`` (this node's
    options for it), this node holding at most ``local_memory_bytes`` of it.

    Splitting sends the model's weights to the workers, so only a model whose licence
    allows sharing (``Use.SHARE``: green) is split.

    Raises:
        InvalidRequest (bad GGUF).
        PlacementRefused: the model's licence does not allow sharing it.
    """
    require_shareable(model)
    return SplitModel(
        model_id=ModelId(model.entry.id),
        layout=replace(read_layout(model.path), name=model.entry.id),
        base_launch=launch,
        local=LocalNode(local_memory_bytes, launch.threads),
        candidates=candidates,
        policy=policy,
    )
