"""Ternary weights as the checkpoints publish them, and as llama.cpp's TQ formats store them.

Published BitNet-style checkpoints (Hugging Face transformers' ``quant_method = "bitnet"``,
written by ``transformers.integrations.pack_weights`` and read by its ``unpack_weights``;
the llama.cpp converter's ``dequant_bitnet`` reads them the same way) store a linear layer
of ``out`` rows as ``uint8[out / 4, in]``: byte ``[r, c]`` holds, in its bit pairs
``2i..2i+1`` (i = 0..3), the value ``w[i * out/4 + r, c] + 1`` (so 0, 1, 2 mean -1, 0, +1),
and a one-element ``weight_scale`` that the weights are *divided* by
(``BitLinear.post_quant_process``: ``y / (input_scale * weight_scale)``).

llama.cpp's TQ2_0 (2.06 bits/weight) and TQ1_0 (1.69) keep each 256-value run of a row
as trits plus one fp16 scale, so ``trits / weight_scale`` is stored exactly, up to the
fp16 rounding of the scale (relative 2^-11, the same for every weight of a tensor).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import gguf
import numpy as np

__all__ = [
    "TERNARY_ROW",
    "TernaryQuant",
    "ternary_blocks",
    "trit_rows",
    "unpack_bitnet",
]

TernaryQuant = Literal["TQ1_0", "TQ2_0"]
TERNARY_ROW = 256  # values per TQ super-block: every ternary row must be a multiple
_VALUES_PER_BYTE = 4
# Bound on the float32 working set of one quantization step (rows are processed in chunks).
_CHUNK_VALUES = 1 << 22


def trit_rows(packed: np.ndarray[Any, Any], rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The unpacked ternary rows ``rows`` (indices into ``out``) of a packed weight, as int8."""
    per_slot = packed.shape[0]
    slot = (rows // per_slot).astype(np.uint8)
    source = np.asarray(packed[rows % per_slot], dtype=np.uint8)
    bits = (source >> (np.uint8(2) * slot)[:, None]) & np.uint8(3)
    trits: np.ndarray[Any, Any] = bits.astype(np.int8) - np.int8(1)
    return trits


def unpack_bitnet(packed: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A whole packed weight as int8 trits ``[out, in]`` (small tensors and tests)."""
    return trit_rows(packed, np.arange(packed.shape[0] * _VALUES_PER_BYTE))


def ternary_blocks(
    packed: np.ndarray[Any, Any],
    scale: float,
    quant: TernaryQuant,
    *,
    row_order: np.ndarray[Any, Any] | None = None,
) -> Iterator[bytes]:
    """The TQ1_0/TQ2_0 bytes of ``trits / scale``, row by row in ``row_order``, in chunks.

    ``row_order[i]`` is the source row written as row ``i`` (llama's q/k permutation);
    by default rows keep their order. Only one chunk of float32 values exists at a time.
    """
    n_out = packed.shape[0] * _VALUES_PER_BYTE
    n_in = packed.shape[1]
    if n_in % TERNARY_ROW:
        raise ValueError(f"ternary rows need a multiple of {TERNARY_ROW} values, not {n_in}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"the weight scale must be a positive number, not {scale}")
    order = np.arange(n_out) if row_order is None else np.asarray(row_order)
    qtype = gguf.GGMLQuantizationType[quant]
    step = max(1, _CHUNK_VALUES // n_in)
    inverse = np.float32(1.0 / scale)
    for first in range(0, n_out, step):
        trits = trit_rows(packed, order[first : first + step])
        values = trits.astype(np.float32) * inverse
        yield gguf.quants.quantize(values, qtype).tobytes()
