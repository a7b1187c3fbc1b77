"""Fixtures for split inference: a tiny generated model (workers: ``rpc_workers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.convert.synthetic import write_llama_gguf


@pytest.fixture(scope="session")
def split_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four blocks, real tokenizer; generates hundreds of tokens per second over RPC."""
    path = tmp_path_factory.mktemp("split-models") / "tiny-split.gguf"
    return write_llama_gguf(path, quant="Q8_0", n_layers=4, n_ctx=1024)
