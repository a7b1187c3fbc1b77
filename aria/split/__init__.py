"""Split inference: one model's layers spread over RPC workers with llama.cpp's ggml-rpc.

* :mod:`~aria.split.planner` (pure) decides which workers hold which layers, and why;
* :mod:`~aria.split.gguf_layers` reads the per-layer sizes it needs from a GGUF file;
* :mod:`~aria.split.orchestrator` serves the split model through the backend dispatcher
  and re-plans without workers that died;
* :mod:`~aria.split.peers` (pure) and :mod:`~aria.split.network` turn the peer network's
  lenders into candidates; :mod:`~aria.split.auto` opens a split lease for a chain entry
  the node's placement decision marked ``split``.

The workers themselves, their protocol and the lender's filter are :mod:`aria.rpc`; the
byte relay that carries ggml-rpc through the peer network is
:mod:`aria.p2p.transport.relay`.

Names are imported on first use (PEP 562), so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aria._lazy import lazy_exports

if TYPE_CHECKING:
    from aria.split.auto import describe_split, placement_of, split_lease
    from aria.split.gguf_layers import read_layout
    from aria.split.layout import ModelLayout
    from aria.split.network import NetworkCandidates, network_candidates
    from aria.split.orchestrator import SplitLease, SplitModel
    from aria.split.peers import candidates_from_peers, lenders
    from aria.split.placement import (
        Candidate,
        LocalNode,
        PeerShare,
        Placement,
        PlanPolicy,
        Skipped,
    )
    from aria.split.planner import plan_placement
    from aria.split.service import (
        WorkerSpec,
        candidate_from_worker,
        probe_candidates,
        split_model_for,
    )

__all__ = [
    "Candidate",
    "LocalNode",
    "ModelLayout",
    "NetworkCandidates",
    "PeerShare",
    "Placement",
    "PlanPolicy",
    "Skipped",
    "SplitLease",
    "SplitModel",
    "WorkerSpec",
    "candidate_from_worker",
    "candidates_from_peers",
    "describe_split",
    "lenders",
    "network_candidates",
    "placement_of",
    "plan_placement",
    "probe_candidates",
    "read_layout",
    "split_lease",
    "split_model_for",
]

_HOMES = {
    "Candidate": "placement",
    "LocalNode": "placement",
    "ModelLayout": "layout",
    "NetworkCandidates": "network",
    "PeerShare": "placement",
    "Placement": "placement",
    "PlanPolicy": "placement",
    "Skipped": "placement",
    "SplitLease": "orchestrator",
    "SplitModel": "orchestrator",
    "WorkerSpec": "service",
    "candidate_from_worker": "service",
    "candidates_from_peers": "peers",
    "describe_split": "auto",
    "lenders": "peers",
    "network_candidates": "network",
    "placement_of": "auto",
    "plan_placement": "planner",
    "probe_candidates": "service",
    "read_layout": "gguf_layers",
    "split_lease": "auto",
    "split_model_for": "service",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
