"""The llama-family header of a GGUF file: one writer for every GGUF ARIA makes.

The converter (:mod:`aria.convert.llama_bitnet`) and the synthetic test models
(:mod:`aria.convert.synthetic`) describe the same llama graph to llama.cpp, so they
write its hyper-parameters through this one function, in one order.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf

__all__ = ["LlamaHparams", "write_llama_header"]


@dataclass(frozen=True)
class LlamaHparams:
    """What llama.cpp reads to build a llama-family graph."""

    n_vocab: int
    n_embd: int
    n_layers: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_ctx: int
    rope_theta: float
    rms_eps: float


def write_llama_header(
    writer: gguf.GGUFWriter,
    hparams: LlamaHparams,
    *,
    name: str,
    licence: str,
    description: str,
    file_type: int,
) -> None:
    """Add the file's identity and ``hparams`` to ``writer`` (before tensors and tokenizer);
    ``file_type`` is a ``gguf.LlamaFileType`` value."""
    writer.add_name(name)
    writer.add_license(licence)
    writer.add_description(description)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_vocab_size(hparams.n_vocab)
    writer.add_context_length(hparams.n_ctx)
    writer.add_embedding_length(hparams.n_embd)
    writer.add_block_count(hparams.n_layers)
    writer.add_feed_forward_length(hparams.n_ff)
    writer.add_head_count(hparams.n_head)
    writer.add_head_count_kv(hparams.n_head_kv)
    writer.add_rope_dimension_count(hparams.head_dim)
    if hparams.head_dim * hparams.n_head != hparams.n_embd:
        writer.add_key_length(hparams.head_dim)
        writer.add_value_length(hparams.head_dim)
    writer.add_rope_freq_base(hparams.rope_theta)
    writer.add_layer_norm_rms_eps(hparams.rms_eps)
