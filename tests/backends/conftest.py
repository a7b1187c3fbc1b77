"""A tiny generated GGUF (real tokenizer, ChatML template) shared by the backend tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.convert.synthetic import write_llama_gguf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama_gguf(
        tmp_path_factory.mktemp("models") / "tiny.gguf", quant="Q8_0", n_ctx=2048
    )
