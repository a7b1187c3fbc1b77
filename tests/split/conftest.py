"""Fixtures for split inference: a tiny generated model and real RPC worker processes.

Each worker is its own process with its own ARIA_HOME (whose config consents to lending
compute), listening on a free 127.0.0.1 port; every worker is stopped after its test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aria.bench.synthetic import write_llama_gguf
from aria.config import AriaPaths, update_settings
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


def worker_env(home: Path) -> dict[str, str]:
    """This environment without ARIA_* overrides, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIA_")}
    return env | {"ARIA_HOME": str(home)}


def consenting_home(home: Path, *, consent: bool = True) -> Path:
    update_settings(AriaPaths(home), {"consent": {"share_rpc": consent}})
    return home


@pytest.fixture
def rpc_workers(tmp_path: Path) -> Iterator[StartWorker]:
    """Start workers on demand: ``start(memory_gb=None, threads=1, consent=True)``."""
    started: list[RpcWorker] = []

    def start(
        *, memory_gb: float | None = None, threads: int = 1, consent: bool = True
    ) -> RpcWorker:
        home = consenting_home(tmp_path / f"worker-{len(started)}", consent=consent)
        worker = start_rpc_worker(
            log_path=home / "logs" / "rpc-worker.log",
            threads=threads,
            memory_gb=memory_gb,
            env=worker_env(home),
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
