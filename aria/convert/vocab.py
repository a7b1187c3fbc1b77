"""A Hugging Face ``tokenizer.json`` (byte-level BPE) as llama.cpp's ``gpt2`` vocabulary.

llama.cpp's own converter builds this with ``transformers.AutoTokenizer``; ARIA reads the
same facts straight from the JSON (no torch, no transformers): tokens in id order, added
tokens typed CONTROL when special (USER_DEFINED otherwise), ids missing from the file
padded as ``[PAD<id>]``. Merges, special token ids, add-BOS/EOS flags and the chat
template come from ``gguf.SpecialVocab``, which reads the same files. The pre-tokenizer
name cannot be derived from the JSON without the reference tokenizer, so each catalog
recipe names it (``falcon3`` for the Falcon families, as llama.cpp's converter records).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from aria.errors import StoreError

__all__ = ["BpeVocabulary", "read_bpe_vocabulary"]


@dataclass(frozen=True)
class BpeVocabulary:
    tokens: tuple[str, ...]
    types: tuple[int, ...]
    special: gguf.SpecialVocab

    def add_to(self, writer: gguf.GGUFWriter, pre_tokenizer: str) -> None:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre_tokenizer)
        writer.add_token_list(list(self.tokens))
        writer.add_token_types(list(self.types))
        self.special.add_to_gguf(writer, quiet=True)


def read_bpe_vocabulary(folder: Path, n_vocab: int) -> BpeVocabulary:
    """The vocabulary of the tokenizer in ``folder`` padded to the model's ``n_vocab`` rows.

    Raises:
        StoreError: no readable ``tokenizer.json``, or not a byte-level BPE tokenizer.
    """
    path = folder / "tokenizer.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        model = data["model"]
        vocab: dict[str, int] = model["vocab"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"cannot read the tokenizer in {path}: {exc}") from exc
    if model.get("type") != "BPE" or not _byte_level(data):
        raise StoreError(f"{path} is not a byte-level BPE tokenizer; ARIA cannot convert it")
    by_id = {int(i): token for token, i in vocab.items()}
    added = {
        int(t["id"]): (str(t["content"]), bool(t.get("special")))
        for t in data.get("added_tokens", [])
    }
    if max((*by_id, *added), default=-1) >= n_vocab:
        raise StoreError(f"{path} has token ids beyond the model's {n_vocab} embedding rows")
    tokens, types = [], []
    for token_id in range(n_vocab):
        if token_id in added:
            content, is_special = added[token_id]
            tokens.append(content)
            types.append(gguf.TokenType.CONTROL if is_special else gguf.TokenType.USER_DEFINED)
        elif token_id in by_id:
            tokens.append(by_id[token_id])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{token_id}]")
            types.append(gguf.TokenType.USER_DEFINED)
    specials = gguf.SpecialVocab(folder, load_merges=True, n_vocab=n_vocab)
    if not specials.merges:
        raise StoreError(f"{path} has no BPE merges")
    return BpeVocabulary(tuple(tokens), tuple(int(t) for t in types), specials)


def _byte_level(data: dict[str, Any]) -> bool:
    """Does the pre-tokenizer (or decoder) map bytes to the GPT-2 unicode alphabet?"""

    def has(node: Any) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(has(child) for child in node.get("pretokenizers", []) or [])

    return has(data.get("pre_tokenizer")) or has(data.get("decoder"))
