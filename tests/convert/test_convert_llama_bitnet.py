"""Converted ternary checkpoints compute the published network on ARIA's llama.cpp.

Each case builds a tiny random checkpoint in the published packing (see
aria/convert/synthetic_checkpoint.py for the layout and its sources), converts it, runs it
with llama_cpp and compares the logits of several prompts with an independent numpy
forward pass of the same checkpoint (tests/helpers/bitnet_reference.py).

Tolerance, measured (see docs/MODELS.md): llama.cpp quantizes activations to 8 bits per
256 values (Q8_K) where transformers' BitLinear quantizes per token, and keeps K/V in
fp16. Over 15 prompts on 5 layouts the largest logit difference was 0.016-0.038 x the
logits' standard deviation, the same size as what 8-bit activations alone change (the
reference with and without activation quantization differ by 0.016-0.036 x). A test
fails above 0.08 x, or above 2.5x the activation-quantization spread of that prompt;
a wrong packing order, scale or RoPE layout lands at 0.5-3 x (the negative controls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aria.convert import convert_llama_bitnet, ternary
from aria.convert import llama_bitnet as recipe
from aria.convert.synthetic_checkpoint import CheckpointSpec, write_bitnet_checkpoint
from aria.convert.ternary import TernaryQuant
from aria.errors import StoreError
from tests.helpers.bitnet_reference import BitnetReference

_TOLERANCE = 0.08
_SPREAD_FACTOR = 2.5

LAYOUTS = {
    "falcon3-like": CheckpointSpec(),
    "deeper": CheckpointSpec(n_layers=4, seed=1),
    "wide-mha": CheckpointSpec(n_embd=512, n_head=8, n_head_kv=8, n_ff=1024, seed=2),
    "tied-embeddings": CheckpointSpec(tied=True, seed=3),
    "autobitlinear": CheckpointSpec(linear_class="autobitlinear", seed=4),
}


def _logits(path: Path, tokens: list[int]) -> np.ndarray[Any, Any]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=128, logits_all=True, verbose=False, n_threads=1
    )
    try:
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)], dtype=np.float64)
    finally:
        llm.close()


def _prompts(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(0, 270, size)] for size in (5, 13, 24)]


def _agreement(got: np.ndarray[Any, Any], folder: Path, tokens: list[int]) -> float:
    """max |llama.cpp - reference| / std(reference), checked against the spread."""
    exact = BitnetReference(folder).logits(tokens)
    floating = BitnetReference(folder, act_quant=False).logits(tokens)
    sigma = exact.std()
    error = float(np.abs(got - exact).max() / sigma)
    spread = float(np.abs(exact - floating).max() / sigma)
    assert error <= _TOLERANCE, f"logits differ by {error:.3f} sigma"
    assert error <= _SPREAD_FACTOR * max(spread, 0.01), (error, spread)
    # The top token agrees wherever the reference is not a near tie.
    ordered = np.sort(exact, axis=-1)
    clear = ordered[:, -1] - ordered[:, -2] > 2 * _TOLERANCE * sigma
    assert (got.argmax(-1) == exact.argmax(-1))[clear].all()
    return error


@pytest.mark.parametrize("quant", ["TQ2_0", "TQ1_0"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_converted_model_matches_the_reference(
    tmp_path: Path, layout: str, quant: TernaryQuant
) -> None:
    spec = LAYOUTS[layout]
    folder = write_bitnet_checkpoint(tmp_path / "ckpt", spec)
    out = tmp_path / "model.gguf"
    summary = convert_llama_bitnet(
        folder, out, quant=quant, pre_tokenizer="falcon3", name="tiny", licence="MIT"
    )
    assert summary.ternary_tensors == 7 * spec.n_layers
    for tokens in _prompts(spec.seed):
        _agreement(_logits(out, tokens), folder, tokens)


def test_ternary_weights_are_stored_losslessly(tmp_path: Path) -> None:
    import gguf

    from aria.convert.ternary import unpack_bitnet

    folder = write_bitnet_checkpoint(tmp_path / "ckpt", CheckpointSpec())
    out = tmp_path / "model.gguf"
    convert_llama_bitnet(folder, out, pre_tokenizer="falcon3", name="t", licence="MIT")
    from aria.convert.checkpoint import Checkpoint

    source = Checkpoint.open(folder)
    reader = gguf.GGUFReader(out)
    tensor = next(t for t in reader.tensors if t.name == "blk.0.ffn_down.weight")
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    trits = unpack_bitnet(source.array("model.layers.0.mlp.down_proj.weight"))
    scale = float(source.float32("model.layers.0.mlp.down_proj.weight_scale")[0])
    np.testing.assert_allclose(values, trits / scale, rtol=2**-10)
    assert set(np.unique(np.sign(values))) <= {-1.0, 0.0, 1.0}


def test_tokenizer_and_chat_template_survive(tmp_path: Path) -> None:
    import llama_cpp

    folder = write_bitnet_checkpoint(tmp_path / "ckpt", CheckpointSpec())
    out = tmp_path / "model.gguf"
    convert_llama_bitnet(folder, out, pre_tokenizer="falcon3", name="t", licence="MIT")
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=64, verbose=False, vocab_only=True)
    try:
        # Merges of the test tokenizer: 257 is "the", 263 is " the" (byte-level "Ġthe").
        assert llm.tokenize(b"the the", add_bos=False) == [257, 263]
        assert llm.detokenize(llm.tokenize(b"Hello, world", add_bos=False)) == b"Hello, world"
        assert llm.tokenize(b"<|user|>", add_bos=False, special=True) == [268]
        assert "<|assistant|>" in (llm.metadata.get("tokenizer.chat_template") or "")
    finally:
        llm.close()


def _wrong(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "no-rotary-permutation":
        monkeypatch.setattr(recipe, "rotary_order", lambda rows, heads: None)
    else:
        original = ternary.ternary_blocks

        def inverted(packed: Any, scale: float, quant: Any, **kw: Any) -> Any:
            return original(packed, 1.0 / scale, quant, **kw)

        monkeypatch.setattr(recipe, "ternary_blocks", inverted)


@pytest.mark.parametrize("how", ["no-rotary-permutation", "scale-multiplied"])
def test_the_comparison_catches_a_wrong_conversion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    folder = write_bitnet_checkpoint(tmp_path / "ckpt", CheckpointSpec())
    _wrong(monkeypatch, how)
    out = tmp_path / "model.gguf"
    convert_llama_bitnet(folder, out, pre_tokenizer="falcon3", name="t", licence="MIT")
    tokens = _prompts(0)[1]
    with pytest.raises(AssertionError):
        _agreement(_logits(out, tokens), folder, tokens)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_act": "relu2"}, "activation"),
        ({"architectures": ["BitNetForCausalLM"]}, "LlamaForCausalLM"),
        ({"quantization_config": {"quant_method": "bitnet", "use_rms_norm": True}}, "normalize"),
        ({"quantization_config": None}, "bitnet"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "RoPE"),
    ],
)
def test_networks_the_llama_graph_cannot_compute_are_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    import json

    folder = write_bitnet_checkpoint(tmp_path / "ckpt", CheckpointSpec())
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | change))
    with pytest.raises(StoreError, match=message):
        convert_llama_bitnet(
            folder, tmp_path / "x.gguf", pre_tokenizer="falcon3", name="t", licence="MIT"
        )
    assert not (tmp_path / "x.gguf").exists()


def test_a_truncated_shard_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_bitnet_checkpoint(tmp_path / "ckpt", CheckpointSpec())
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(StoreError, match="truncated"):
        convert_llama_bitnet(
            folder, tmp_path / "x.gguf", pre_tokenizer="falcon3", name="t", licence="MIT"
        )
