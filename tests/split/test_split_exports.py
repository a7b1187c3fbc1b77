"""The public surface of aria.split is deliberate, and resolves lazily to the real objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

import aria.split


def test_the_public_surface_is_exactly_this() -> None:
    assert sorted(aria.split.__all__) == [
        "Candidate", "Duplex", "FarSide", "LOOPBACK_HOST", "LocalNode", "ModelLayout",
        "NetworkCandidates", "PeerShare", "Placement", "PlanPolicy", "Relay", "RelayStats",
        "RpcWorker", "Skipped", "SplitLease", "SplitModel", "TcpFarSide", "WorkerProbe",
        "WorkerReady", "WorkerSpec", "candidate_from_worker", "candidates_from_peers",
        "describe_split", "free_loopback_port", "lenders", "listening_addresses",
        "measure_rtt", "needs_split", "network_candidates", "pipe", "placement_of",
        "plan_for", "plan_placement", "probe_candidates", "probe_worker", "probe_workers",
        "read_layout", "relay_in_thread", "require_loopback", "split_lease",
        "split_model_for", "start_rpc_worker",
    ]  # fmt: skip


def test_every_exported_name_comes_from_its_module() -> None:
    for name in aria.split.__all__:
        exported = getattr(aria.split, name)
        home = sys.modules[f"aria.split.{aria.split._HOMES[name]}"]
        assert getattr(home, name) is exported, name
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = aria.split.no_such_name  # type: ignore[attr-defined]


def test_a_worker_process_does_not_import_the_orchestrator_or_llama_cpp() -> None:
    probe = (
        "import sys, aria.split.worker, aria.split.probe; "
        "print(sorted(m for m in sys.modules if m.startswith(('aria.backends', 'llama_cpp'))))"
    )
    child = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert child.stdout.strip() == "[]"
