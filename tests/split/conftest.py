"""Fixtures for split inference: a tiny generated model and real RPC worker processes.

Each worker is its own confined process listening on a free 127.0.0.1 port (the
operator's consent is the node's business, not the worker's); every worker is stopped
after its test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aria.convert.synthetic import write_llama_gguf
from aria.split import RpcWorker, start_rpc_worker

StartWorker = Callable[..., RpcWorker]


@pytest.fixture(scope="session")
def split_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four blocks, real tokenizer; generates hundreds of tokens per second over RPC."""
    path = tmp_path_factory.mktemp("split-models") / "tiny-split.gguf"
    return write_llama_gguf(path, quant="Q8_0", n_layers=4, n_ctx=1024)


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


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
