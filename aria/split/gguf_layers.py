"""Read a model's :class:`~aria.split.layout.ModelLayout` from its GGUF tensor table.

Blocks are the ``blk.N.*`` tensors; ``token_embd.weight`` is the input (it stays on the
orchestrator); the head is ``output_norm.weight`` plus ``output.weight``, or a copy of
the token embeddings when the model ties them (llama.cpp then loads them twice).
Anything else outside the blocks (e.g. ``rope_freqs``) is counted with the input.
Only the header and tensor table are parsed (``gguf.GGUFReader`` memory-maps the file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aria.errors import InvalidRequest
from aria.split.layout import ModelLayout

__all__ = ["read_layout"]

_BLOCK = re.compile(r"^blk\.(\d+)\.")
_INPUT = "token_embd.weight"
_HEAD = ("output_norm.weight", "output.weight")


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def read_layout(path: Path) -> ModelLayout:
    """Per-block weight sizes, input/head sizes and the shapes that size K/V and scratch.

    Raises:
        InvalidRequest: the file is not a readable GGUF or lacks llama.cpp's layer metadata.
    """
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{path} is not a readable GGUF file: {exc}") from None
    arch = _field(reader, "general.architecture")
    n_layers = _field(reader, f"{arch}.block_count")
    n_embd = _field(reader, f"{arch}.embedding_length")
    if not arch or not n_layers or not n_embd:
        raise InvalidRequest(f"{path} has no layer metadata (architecture, block count, width)")
    n_head = _max(_field(reader, f"{arch}.attention.head_count")) or 1
    n_head_kv = _max(_field(reader, f"{arch}.attention.head_count_kv")) or n_head
    key_length = int(_field(reader, f"{arch}.attention.key_length") or n_embd // n_head)

    blocks = [0] * int(n_layers)
    input_bytes = head_bytes = 0
    sizes: dict[str, int] = {}
    for tensor in reader.tensors:
        size = int(tensor.n_bytes)
        sizes[tensor.name] = size
        match = _BLOCK.match(tensor.name)
        if match and int(match.group(1)) < len(blocks):
            blocks[int(match.group(1))] += size
        elif tensor.name in _HEAD:
            head_bytes += size
        else:
            input_bytes += size
    if "output.weight" not in sizes:
        head_bytes += sizes.get(_INPUT, 0)  # tied embeddings: the head gets its own copy
    n_vocab = _field(reader, f"{arch}.vocab_size") or len(
        _field(reader, "tokenizer.ggml.tokens") or ()
    )
    name = _field(reader, "general.name") or path.stem
    return ModelLayout(
        name=str(name),
        layer_bytes=tuple(blocks),
        input_bytes=input_bytes,
        output_bytes=head_bytes,
        n_embd=int(n_embd),
        n_embd_kv=n_head_kv * key_length,
        n_head=n_head,
        n_ff=int(_max(_field(reader, f"{arch}.feed_forward_length")) or 4 * int(n_embd)),
        n_vocab=int(n_vocab),
        context_length=int(_field(reader, f"{arch}.context_length") or 0),
    )


def _max(value: Any) -> int:
    """The value, or the largest of a per-layer list (some architectures vary widths)."""
    if isinstance(value, list):
        return max((int(v) for v in value), default=0)
    return int(value or 0)
