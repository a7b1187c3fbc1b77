"""A numpy forward pass of a sentence-transformers BERT model: the reference the GGUF is
checked against (sentence-transformers and torch are deliberately not installed).

Tokenization is the Hugging Face ``tokenizers`` library reading the model's own
``tokenizer.json``, so token ids are the upstream ones; the network is BERT's encoder
(post-norm, exact GELU) followed by mean pooling over the attention mask and L2
normalization, as ``modules.json`` of all-MiniLM-L6-v2 declares.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


class BertReference:
    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        from aria.convert.safetensors import SafetensorsFile

        self.config = json.loads((model_dir / "config.json").read_text())
        weights = SafetensorsFile(model_dir / "model.safetensors")
        self.w = {
            name.removeprefix("bert."): weights.float32(name).astype(np.float64)
            for name in weights
            if name != "embeddings.position_ids"
        }
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def token_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def embed(self, text: str) -> np.ndarray[Any, Any]:
        ids = np.array(self.token_ids(text))
        w, eps = self.w, float(self.config["layer_norm_eps"])
        heads = int(self.config["num_attention_heads"])
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _norm(x, w, "embeddings.LayerNorm", eps)
        for layer in range(int(self.config["num_hidden_layers"])):
            p = f"encoder.layer.{layer}."
            q, k, v = (_linear(x, w, p + f"attention.self.{n}") for n in ("query", "key", "value"))
            size = q.shape[1] // heads
            split = [m.reshape(len(ids), heads, size).transpose(1, 0, 2) for m in (q, k, v)]
            scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ split[2]
            context = context.transpose(1, 0, 2).reshape(len(ids), -1)
            x = _norm(
                x + _linear(context, w, p + "attention.output.dense"),
                w,
                p + "attention.output.LayerNorm",
                eps,
            )
            hidden = _linear(x, w, p + "intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + np.vectorize(math.erf)(hidden / math.sqrt(2.0)))
            x = _norm(x + _linear(hidden, w, p + "output.dense"), w, p + "output.LayerNorm", eps)
        pooled = x.mean(axis=0)
        unit: np.ndarray[Any, Any] = pooled / np.linalg.norm(pooled)
        return unit


def _linear(x: np.ndarray[Any, Any], w: dict[str, Any], name: str) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = x @ w[name + ".weight"].T + w[name + ".bias"]
    return out


def _norm(
    x: np.ndarray[Any, Any], w: dict[str, Any], name: str, eps: float
) -> np.ndarray[Any, Any]:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    normed: np.ndarray[Any, Any] = (x - mean) / np.sqrt(var + eps) * w[name + ".weight"]
    shifted: np.ndarray[Any, Any] = normed + w[name + ".bias"]
    return shifted
