"""Per-layer sizes read from a GGUF tensor table, and the memory arithmetic on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader

from aria.convert.synthetic import write_llama_gguf
from aria.errors import InvalidRequest
from aria.split import read_layout


def test_layout_of_a_synthetic_model_matches_its_tensor_table(tmp_path: Path) -> None:
    path = write_llama_gguf(
        tmp_path / "m.gguf",
        quant="Q8_0",
        n_layers=3,
        n_embd=256,
        n_ff=512,
        n_head=4,
        n_head_kv=2,
        n_ctx=768,
    )
    layout = read_layout(path)
    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(path).tensors}
    assert layout.n_layers == 3
    for index, size in enumerate(layout.layer_bytes):
        assert size == sum(v for k, v in tensors.items() if k.startswith(f"blk.{index}."))
    assert layout.input_bytes == tensors["token_embd.weight"]
    # No output.weight: the head ties to the embeddings and llama.cpp loads a copy.
    assert "output.weight" not in tensors
    assert layout.output_bytes == tensors["output_norm.weight"] + tensors["token_embd.weight"]
    assert layout.weight_bytes == sum(tensors.values()) + tensors["token_embd.weight"]
    assert (layout.n_embd, layout.n_head, layout.n_embd_kv) == (256, 4, 2 * 64)
    assert (layout.n_ff, layout.n_vocab, layout.context_length) == (512, 995, 768)


def test_memory_arithmetic() -> None:
    from aria.split import ModelLayout

    layout = ModelLayout(
        "m",
        (100, 200),
        10,
        20,
        n_embd=64,
        n_embd_kv=32,
        n_head=2,
        n_ff=128,
        n_vocab=1000,
        context_length=4096,
    )
    assert layout.kv_bytes(1024) == 2 * 32 * 1024 * 2  # K and V, f16
    assert layout.block_bytes(1, 1024) == 200 + layout.kv_bytes(1024)
    assert layout.compute_bytes(2048) > layout.compute_bytes(1024)
    assert layout.output_compute_bytes() == 512 * 1000 * 4


@pytest.mark.parametrize("content", [b"", b"not a gguf file at all", b"GGUF\x03\x00\x00\x00"])
def test_unreadable_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(InvalidRequest, match="bad.gguf"):
        read_layout(path)
