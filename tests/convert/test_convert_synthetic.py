"""The synthetic GGUF generator: valid files, deterministic, and runnable in llama.cpp."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from aria.convert import SyntheticSpec, write_bitnet_gguf, write_gguf, write_llama_gguf
from aria.convert.synthetic import Arch
from aria.convert.synthetic_vocab import CHATML_TEMPLATE, build_vocab

LLAMA_CASES = ["F16", "Q8_0", "Q4_0"]
BITNET_CASES = ["TQ1_0", "TQ2_0"]


def _write(tmp_path: Path, quant: str, seed: int = 0, name: str = "m.gguf") -> Path:
    if quant in BITNET_CASES:
        return write_bitnet_gguf(tmp_path / name, quant=quant, seed=seed)  # type: ignore[arg-type]
    return write_llama_gguf(tmp_path / name, quant=quant, seed=seed)  # type: ignore[arg-type]


def _field(reader: gguf.GGUFReader, key: str) -> object:
    return reader.fields[key].contents()


@pytest.mark.parametrize("quant", LLAMA_CASES + BITNET_CASES)
def test_file_metadata_and_tensor_types(tmp_path: Path, quant: str) -> None:
    path = _write(tmp_path, quant)
    reader = gguf.GGUFReader(path)
    arch: Arch = "bitnet" if quant in BITNET_CASES else "llama"
    assert _field(reader, "general.architecture") == arch
    assert _field(reader, "general.license") == "apache-2.0"
    assert str(_field(reader, "general.name")).startswith("aria-synthetic-")
    assert _field(reader, "tokenizer.chat_template") == CHATML_TEMPLATE
    assert _field(reader, "tokenizer.ggml.model") == "llama"
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert isinstance(tokens, list) and len(tokens) == len(build_vocab())
    assert {"<0x00>", "<0xFF>", "<|im_start|>", "<|im_end|>", "<s>", "</s>"} <= set(tokens)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == quant
    assert types["blk.1.ffn_down.weight"] == quant
    assert types["output_norm.weight"] == "F32"
    assert "output.weight" not in types
    assert ("blk.0.attn_sub_norm.weight" in types) == (arch == "bitnet")
    assert sum(int(t.n_elements) for t in reader.tensors) == SyntheticSpec(arch, quant).params


def test_default_models_are_small(tmp_path: Path) -> None:
    assert _write(tmp_path, "Q8_0").stat().st_size < 3_000_000
    assert _write(tmp_path, "TQ1_0", name="t.gguf").stat().st_size < 2_000_000


@pytest.mark.parametrize("quant", ["Q4_0", "TQ2_0"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, quant: str) -> None:
    first = _write(tmp_path, quant, seed=7, name="a.gguf").read_bytes()
    again = _write(tmp_path, quant, seed=7, name="b.gguf").read_bytes()
    other = _write(tmp_path, quant, seed=8, name="c.gguf").read_bytes()
    assert first == again
    assert first != other
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("quant", BITNET_CASES)
def test_ternary_weights_are_exactly_ternary(tmp_path: Path, quant: str) -> None:
    reader = gguf.GGUFReader(_write(tmp_path, quant))
    tensor = next(t for t in reader.tensors if t.name == "blk.0.ffn_up.weight")
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    scale = np.abs(values).max()
    assert scale > 0
    levels = np.unique(np.round(values / scale, 3))
    assert set(levels.tolist()) == {-1.0, 0.0, 1.0}


def test_params_size_a_study_model() -> None:
    spec = SyntheticSpec(arch="bitnet", quant="TQ1_0", n_embd=1024, n_layers=16, n_ff=2816)
    per_layer = 4 * 1024 * 1024 + 3 * 1024 * 2816 + 2 * 1024 + 1024 + 2816
    assert spec.params == 16 * per_layer + spec.n_vocab * 1024 + 1024
    assert 190_000_000 < spec.params < 210_000_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"arch": "llama", "quant": "TQ2_0"},
        {"arch": "bitnet", "quant": "Q8_0"},
        {"arch": "bitnet", "quant": "TQ1_0", "n_embd": 384, "n_head": 6},
        {"arch": "llama", "quant": "Q4_0", "n_ff": 500},
        {"arch": "llama", "quant": "F16", "n_embd": 256, "n_head": 3},
        {"arch": "llama", "quant": "F16", "n_layers": 0},
        {"arch": "gpt2", "quant": "F16"},
    ],
)
def test_invalid_specs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SyntheticSpec(**kwargs)  # type: ignore[arg-type]


def test_write_gguf_accepts_a_spec(tmp_path: Path) -> None:
    spec = SyntheticSpec(quant="F16", n_embd=128, n_head=2, n_ff=256, name="tiny", license="mit")
    reader = gguf.GGUFReader(write_gguf(tmp_path / "sub" / "x.gguf", spec))
    assert _field(reader, "general.name") == "tiny"
    assert _field(reader, "general.license") == "mit"
    assert _field(reader, "llama.embedding_length") == 128
