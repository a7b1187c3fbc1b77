"""A numpy forward pass of a Llama BitNet checkpoint, as transformers computes it.

Independent of the converter: it reads the safetensors with its own unpacking, keeps
Hugging Face's half-split RoPE (no permutation) and applies ``BitLinear`` literally:
activations quantized to int8 per token (absmax), multiplied by the ternary weights,
divided by ``input_scale * weight_scale``. Float64 throughout, so the reference itself
adds no rounding worth speaking of. ``act_quant=False`` gives the float network (the
weights still ternary), to size what 8-bit activations alone change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aria.convert.safetensors import SafetensorsFile

Array = np.ndarray[Any, Any]


def _unpack(packed: Array) -> Array:
    rows = packed.shape[0]
    out = np.empty((rows * 4, packed.shape[1]), dtype=np.float64)
    for slot in range(4):
        out[slot * rows : (slot + 1) * rows] = ((packed >> (2 * slot)) & 3).astype(np.float64) - 1
    return out


class BitnetReference:
    def __init__(self, folder: Path, *, act_quant: bool = True) -> None:
        self.config = json.loads((folder / "config.json").read_text())
        self.act_quant = act_quant
        st = SafetensorsFile(folder / "model.safetensors")
        self.w = {name: st for name in st}
        self._st = st
        quant = self.config.get("quantization_config") or {}
        self.divides = quant.get("linear_class", "bitlinear") == "bitlinear"

    def _f(self, name: str) -> Array:
        return self._st.float32(name).astype(np.float64)

    def _linear(self, x: Array, name: str) -> Array:
        trits = _unpack(np.asarray(self._st.array(name)))
        scale = float(self._f(name + "_scale").reshape(-1)[0])
        if not self.divides:
            scale = 1.0 / scale
        if self.act_quant:
            x_scale = 127.0 / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-5)
            xq = np.clip(np.round(x * x_scale), -128, 127)
            quantized: Array = (xq @ trits.T) / (x_scale * scale)
            return quantized
        plain: Array = (x @ trits.T) / scale
        return plain

    def _norm(self, x: Array, name: str) -> Array:
        eps = float(self.config["rms_norm_eps"])
        normed: Array = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * self._f(name)
        return normed

    def logits(self, tokens: list[int]) -> Array:
        c = self.config
        n_head, n_kv = c["num_attention_heads"], c["num_key_value_heads"]
        hd = c.get("head_dim") or c["hidden_size"] // n_head
        n = len(tokens)
        h = self._f("model.embed_tokens.weight")[tokens]
        pos = np.arange(n)[:, None]
        inv = c["rope_theta"] ** (-np.arange(0, hd, 2) / hd)
        angles = np.concatenate([pos * inv, pos * inv], axis=-1)  # [n, hd]
        cos, sin = np.cos(angles), np.sin(angles)

        def rope(x: Array) -> Array:  # x: [heads, n, hd], transformers' rotate_half
            half = hd // 2
            rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
            turned: Array = x * cos + rotated * sin
            return turned

        mask = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            x = self._norm(h, p + "input_layernorm.weight")
            q = self._linear(x, p + "self_attn.q_proj.weight").reshape(n, n_head, hd)
            k = self._linear(x, p + "self_attn.k_proj.weight").reshape(n, n_kv, hd)
            v = self._linear(x, p + "self_attn.v_proj.weight").reshape(n, n_kv, hd)
            q, k, v = rope(q.transpose(1, 0, 2)), rope(k.transpose(1, 0, 2)), v.transpose(1, 0, 2)
            group = n_head // n_kv
            k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attn = (scores / scores.sum(axis=-1, keepdims=True)) @ v
            h = h + self._linear(
                attn.transpose(1, 0, 2).reshape(n, -1), p + "self_attn.o_proj.weight"
            )
            x = self._norm(h, p + "post_attention_layernorm.weight")
            gate = self._linear(x, p + "mlp.gate_proj.weight")
            up = self._linear(x, p + "mlp.up_proj.weight")
            h = h + self._linear(gate / (1 + np.exp(-gate)) * up, p + "mlp.down_proj.weight")
        head = "model.embed_tokens.weight" if c.get("tie_word_embeddings") else "lm_head.weight"
        return self._norm(h, "model.norm.weight") @ self._f(head).T
