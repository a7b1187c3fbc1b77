"""Local conversion of published checkpoints into GGUFs ARIA's own llama.cpp runs.

* ``safetensors`` -- a numpy reader/writer for the safetensors format (memory-mapped);
* ``checkpoint``  -- a downloaded checkpoint folder (config, shards);
* ``ternary``     -- the BitNet 2-bit packing and llama.cpp's TQ1_0/TQ2_0 blocks;
* ``vocab``       -- a byte-level BPE ``tokenizer.json`` as a llama.cpp vocabulary;
* ``llama_bitnet``-- Falcon3 1.58-bit / Falcon-E checkpoints -> llama GGUF with TQ weights;
* ``hparams``     -- the llama header fields both writers put in a GGUF;
* ``synthetic``   -- tiny deterministic GGUFs (llama F16/Q8_0/Q4_x, bitnet TQ1_0/TQ2_0) for
  tests, the backend build check and same-shape benchmarks; ``synthetic_checkpoint``
  writes random checkpoints in the published BitNet packing, to convert.

Which families convert, and why the others cannot, is in docs/MODELS.md.
"""

from __future__ import annotations

from aria.convert.llama_bitnet import ConversionSummary, convert_llama_bitnet, read_shape
from aria.convert.synthetic import (
    BITNET_QUANTS,
    LLAMA_QUANTS,
    SyntheticSpec,
    write_bitnet_gguf,
    write_gguf,
    write_llama_gguf,
)

__all__ = [
    "BITNET_QUANTS",
    "LLAMA_QUANTS",
    "ConversionSummary",
    "SyntheticSpec",
    "convert_llama_bitnet",
    "read_shape",
    "write_bitnet_gguf",
    "write_gguf",
    "write_llama_gguf",
]
