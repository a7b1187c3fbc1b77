"""The public surface of aria.rpc, and that a worker process stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import aria.rpc


def test_the_public_surface_is_exactly_this() -> None:
    assert sorted(aria.rpc.__all__) == [
        "FilterLimits", "LOOPBACK_HOST", "RpcFilter", "RpcWorker", "WorkerProbe", "WorkerReady",
        "free_loopback_port", "listening_addresses", "measure_rtt", "parse_endpoint",
        "probe_worker", "probe_workers", "require_loopback", "start_rpc_worker",
    ]  # fmt: skip


def test_every_exported_name_comes_from_its_module() -> None:
    for name in aria.rpc.__all__:
        exported = getattr(aria.rpc, name)
        home = sys.modules[f"aria.rpc.{aria.rpc._HOMES[name]}"]
        assert getattr(home, name) is exported, name
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = aria.rpc.no_such_name


def test_a_worker_process_does_not_import_the_orchestrator_or_llama_cpp() -> None:
    probe = (
        "import sys, aria.rpc.worker, aria.rpc.probe; "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('aria.backends', 'aria.split', 'aria.p2p', 'llama_cpp'))))"
    )
    child = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert child.stdout.strip() == "[]"
