"""Local conversion of published checkpoints into GGUFs ARIA's own llama.cpp runs.

* ``safetensors`` -- a numpy reader/writer for the safetensors format (memory-mapped);
* ``checkpoint``  -- a downloaded checkpoint folder (config, shards);
* ``ternary``     -- the BitNet 2-bit packing and llama.cpp's TQ1_0/TQ2_0 blocks;
* ``vocab``       -- a byte-level BPE ``tokenizer.json`` as a llama.cpp vocabulary;
* ``llama_bitnet``-- Falcon3 1.58-bit / Falcon-E checkpoints -> llama GGUF with TQ weights.

Which families convert, and why the others cannot, is in docs/MODELS.md.
"""

from __future__ import annotations

from aria.convert.llama_bitnet import ConversionSummary, convert_llama_bitnet, read_shape

__all__ = ["ConversionSummary", "convert_llama_bitnet", "read_shape"]
