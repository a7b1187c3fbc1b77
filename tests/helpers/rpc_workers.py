"""The ``rpc_workers`` fixture: real, confined RPC worker processes started on demand.

Each worker is its own process listening on a free 127.0.0.1 port (the operator's
consent is the node's business, not the worker's); every worker is stopped after its
test. Registered for the whole suite in ``tests/conftest.py`` (the worker tests in
``tests/rpc`` and the split tests in ``tests/split`` both start workers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aria.rpc import RpcWorker, start_rpc_worker

StartWorker = Callable[..., RpcWorker]


@pytest.fixture
def rpc_workers(tmp_path: Path) -> Iterator[StartWorker]:
    """Start confined workers on demand: ``start(memory_gb=2.0, threads=1)``."""
    started: list[RpcWorker] = []

    def start(*, memory_gb: float = 2.0, threads: int = 1) -> RpcWorker:
        worker = start_rpc_worker(
            log_path=tmp_path / f"worker-{len(started)}" / "rpc-worker.log",
            threads=threads,
            memory_gb=memory_gb,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
