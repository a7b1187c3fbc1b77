"""Tiny random checkpoints in the published BitNet packing, for tests and the ternary study.

They have exactly the layout of the real Falcon3 1.58-bit / Falcon-E repositories (as
written by ``onebitllms.quantize_to_1bit`` through ``transformers.integrations.pack_weights``):

* ``config.json``: ``LlamaForCausalLM``, ``quantization_config = {"quant_method": "bitnet",
  "modules_to_not_convert": [...]}``, ``torch_dtype = "bfloat16"``;
* ``model.safetensors``: ``model.embed_tokens.weight``, norms and ``lm_head.weight`` in
  BF16; every ``q/k/v/o_proj`` and ``gate/up/down_proj`` as ``U8[out/4, in]`` (four 2-bit
  values per byte, value + 1, row ``i*out/4 + r`` in bits ``2i..2i+1`` of byte row r) with
  a BF16 ``weight_scale`` of shape ``[1]`` the weights are divided by;
* ``tokenizer.json`` (byte-level BPE), ``tokenizer_config.json`` (specials, chat template).

Weights are seeded random trits, so the networks are untrained noise: right for checking
that a conversion computes the same function, and for same-shape speed studies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aria.convert.safetensors import write_safetensors

__all__ = ["CheckpointSpec", "byte_level_alphabet", "pack_bitnet", "write_bitnet_checkpoint"]

SPECIAL_TOKENS = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_MERGES = ("t h", "th e", "a n", "i n", "e r", "Ġ t", "Ġt h", "Ġth e", "o n", "r e")


@dataclass(frozen=True)
class CheckpointSpec:
    n_embd: int = 256
    n_layers: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 512
    n_vocab: int = 288  # more rows than tokens: the tail is padding, as in real checkpoints
    n_ctx: int = 512
    rope_theta: float = 10000.0
    tied: bool = False
    linear_class: str | None = None  # None: the default BitLinear (scale divides)
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def params(self) -> int:
        e, ff, kv = self.n_embd, self.n_ff, self.n_head_kv * self.head_dim
        per_layer = 2 * e + 2 * e * e + 2 * e * kv + 3 * e * ff
        head = 0 if self.tied else self.n_vocab * e
        return self.n_vocab * e + head + e + self.n_layers * per_layer


def pack_bitnet(trits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """int8 trits ``[out, in]`` (out divisible by 4) packed the way transformers packs them."""
    rows = trits.shape[0] // 4
    shifted = (trits.astype(np.int16) + 1).astype(np.uint8)
    packed = np.zeros((rows, trits.shape[1]), dtype=np.uint8)
    for slot in range(4):
        packed |= shifted[slot * rows : (slot + 1) * rows] << np.uint8(2 * slot)
    return packed


def byte_level_alphabet() -> list[str]:
    """The GPT-2 byte-to-unicode alphabet, in byte order (what byte-level BPE tokens use)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_bitnet_checkpoint(folder: Path, spec: CheckpointSpec | None = None) -> Path:
    """Write a random checkpoint of ``spec`` into ``folder`` and return the folder."""
    spec = spec or CheckpointSpec()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    tensors: dict[str, tuple[str, np.ndarray[Any, Any]]] = {}
    e, kv, ff = spec.n_embd, spec.n_head_kv * spec.head_dim, spec.n_ff

    def bf16(values: np.ndarray[Any, Any]) -> tuple[str, np.ndarray[Any, Any]]:
        bits = np.asarray(values, dtype=np.float32).view(np.uint32)
        rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> 16
        return "BF16", rounded.astype(np.uint16)

    def linear(name: str, rows: int, cols: int) -> None:
        trits = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
        # absmean scale of a unit-variance layer, as BitNet training produces (~ sqrt(3 in/2))
        scale = np.sqrt(cols * 1.5) * rng.uniform(0.8, 1.25)
        if spec.linear_class == "autobitlinear":
            scale = 1.0 / scale  # AutoBitLinear multiplies by its scale
        tensors[name] = ("U8", pack_bitnet(trits))
        tensors[name + "_scale"] = bf16(np.array([scale]))

    def norm(name: str, size: int) -> None:
        tensors[name] = bf16(1.0 + 0.1 * rng.standard_normal(size))

    tensors["model.embed_tokens.weight"] = bf16(rng.standard_normal((spec.n_vocab, e)))
    for i in range(spec.n_layers):
        p = f"model.layers.{i}."
        norm(p + "input_layernorm.weight", e)
        linear(p + "self_attn.q_proj.weight", e, e)
        linear(p + "self_attn.k_proj.weight", kv, e)
        linear(p + "self_attn.v_proj.weight", kv, e)
        linear(p + "self_attn.o_proj.weight", e, e)
        norm(p + "post_attention_layernorm.weight", e)
        linear(p + "mlp.gate_proj.weight", ff, e)
        linear(p + "mlp.up_proj.weight", ff, e)
        linear(p + "mlp.down_proj.weight", e, ff)
    norm("model.norm.weight", e)
    if not spec.tied:
        tensors["lm_head.weight"] = bf16(rng.standard_normal((spec.n_vocab, e)) / np.sqrt(e))
    write_safetensors(folder / "model.safetensors", tensors, {"format": "pt"})
    _write_json(folder / "config.json", _config(spec))
    _write_tokenizer(folder, spec)
    return folder


def _config(spec: CheckpointSpec) -> dict[str, Any]:
    quantization: dict[str, Any] = {"modules_to_not_convert": ["lm_head"], "quant_method": "bitnet"}
    if spec.linear_class is not None:
        quantization |= {"linear_class": spec.linear_class, "quantization_mode": "offline"}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": spec.n_embd,
        "intermediate_size": spec.n_ff,
        "num_hidden_layers": spec.n_layers,
        "num_attention_heads": spec.n_head,
        "num_key_value_heads": spec.n_head_kv,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": spec.n_ctx,
        "rms_norm_eps": 1e-6,
        "rope_theta": spec.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": spec.tied,
        "vocab_size": spec.n_vocab,
        "bos_token_id": 256 + len(_MERGES),
        "eos_token_id": 256 + len(_MERGES),
        "torch_dtype": "bfloat16",
        "quantization_config": quantization,
        "is_bitnet_config": True,
    }


def _write_tokenizer(folder: Path, spec: CheckpointSpec) -> None:
    vocab = {token: i for i, token in enumerate(byte_level_alphabet())}
    for merge in _MERGES:
        vocab[merge.replace(" ", "")] = len(vocab)
    added = [
        {"id": len(vocab) + i, "content": text, "special": True, "single_word": False,
         "lstrip": False, "rstrip": False, "normalized": False}
        for i, text in enumerate(SPECIAL_TOKENS)
    ]  # fmt: skip
    if len(vocab) + len(added) > spec.n_vocab:
        raise ValueError(f"n_vocab must be at least {len(vocab) + len(added)}")
    tokenizer = {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}],
        },
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": list(_MERGES)},
    }
    _write_json(folder / "tokenizer.json", tokenizer)
    _write_json(
        folder / "tokenizer_config.json",
        {
            "bos_token": SPECIAL_TOKENS[0],
            "eos_token": SPECIAL_TOKENS[0],
            "add_bos_token": False,
            "chat_template": CHAT_TEMPLATE,
        },
    )


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False), encoding="utf-8")
