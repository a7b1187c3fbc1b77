"""Split inference: one model's layers spread over RPC workers with llama.cpp's ggml-rpc.

* :mod:`~aria.split.planner` (pure) decides which workers hold which layers, and why;
* :mod:`~aria.split.gguf_layers` reads the per-layer sizes it needs from a GGUF file;
* :mod:`~aria.split.worker` is the RPC worker process (127.0.0.1 only, consent-gated,
  memory offer enforced), started with :func:`start_rpc_worker`;
* :mod:`~aria.split.orchestrator` serves the split model through the backend dispatcher
  and re-plans without workers that died;
* :mod:`~aria.split.relay` carries RPC bytes between a local port and a far side (the
  shape of the libp2p tunnel), counting them;
* :mod:`~aria.split.peers` (pure) and :mod:`~aria.split.network` turn the peer network's
  lenders into candidates; :mod:`~aria.split.auto` splits a model that does not fit here.

Only :mod:`~aria.split.ggml_rpc` touches the native library.

Names are imported on first use (PEP 562): an RPC worker or probe process runs
``python -m aria.split.<module>`` and must not pay for the orchestrator's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aria._lazy import lazy_exports

if TYPE_CHECKING:
    from aria.split.auto import describe_split, needs_split, placement_of, split_lease
    from aria.split.ggml_rpc import LOOPBACK_HOST, require_loopback
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
    from aria.split.probe import WorkerProbe, measure_rtt, probe_worker, probe_workers
    from aria.split.relay import (
        Duplex,
        FarSide,
        Relay,
        RelayStats,
        TcpFarSide,
        pipe,
        relay_in_thread,
    )
    from aria.split.service import (
        WorkerSpec,
        candidate_from_worker,
        plan_for,
        probe_candidates,
        split_model_for,
    )
    from aria.split.worker import WorkerReady
    from aria.split.workers import (
        RpcWorker,
        free_loopback_port,
        listening_addresses,
        start_rpc_worker,
    )

__all__ = [
    "LOOPBACK_HOST",
    "Candidate",
    "Duplex",
    "FarSide",
    "LocalNode",
    "ModelLayout",
    "NetworkCandidates",
    "PeerShare",
    "Placement",
    "PlanPolicy",
    "Relay",
    "RelayStats",
    "RpcWorker",
    "Skipped",
    "SplitLease",
    "SplitModel",
    "TcpFarSide",
    "WorkerProbe",
    "WorkerReady",
    "WorkerSpec",
    "candidate_from_worker",
    "candidates_from_peers",
    "describe_split",
    "free_loopback_port",
    "lenders",
    "listening_addresses",
    "measure_rtt",
    "needs_split",
    "network_candidates",
    "pipe",
    "placement_of",
    "plan_for",
    "plan_placement",
    "probe_candidates",
    "probe_worker",
    "probe_workers",
    "read_layout",
    "relay_in_thread",
    "require_loopback",
    "split_lease",
    "split_model_for",
    "start_rpc_worker",
]

_HOMES = {
    "Candidate": "placement",
    "Duplex": "relay",
    "FarSide": "relay",
    "LOOPBACK_HOST": "ggml_rpc",
    "LocalNode": "placement",
    "ModelLayout": "layout",
    "NetworkCandidates": "network",
    "PeerShare": "placement",
    "Placement": "placement",
    "PlanPolicy": "placement",
    "Relay": "relay",
    "RelayStats": "relay",
    "RpcWorker": "workers",
    "Skipped": "placement",
    "SplitLease": "orchestrator",
    "SplitModel": "orchestrator",
    "TcpFarSide": "relay",
    "WorkerProbe": "probe",
    "WorkerReady": "worker",
    "WorkerSpec": "service",
    "candidate_from_worker": "service",
    "candidates_from_peers": "peers",
    "describe_split": "auto",
    "free_loopback_port": "workers",
    "lenders": "peers",
    "listening_addresses": "workers",
    "measure_rtt": "probe",
    "needs_split": "auto",
    "network_candidates": "network",
    "pipe": "relay",
    "placement_of": "auto",
    "plan_for": "service",
    "plan_placement": "planner",
    "probe_candidates": "service",
    "probe_worker": "probe",
    "probe_workers": "probe",
    "read_layout": "gguf_layers",
    "relay_in_thread": "relay",
    "require_loopback": "ggml_rpc",
    "split_lease": "auto",
    "split_model_for": "service",
    "start_rpc_worker": "workers",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
