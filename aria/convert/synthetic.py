"""Tiny, deterministic GGUF models for tests and same-shape benchmarks.

Tests need real model files (a real tokenizer, a chat template, a licence) that load and
generate in llama.cpp in well under a second; the ternary study needs llama and bitnet
models of *equal shape* in several formats. Both come from :func:`write_gguf`: weights are
seeded random values (so two writes with the same spec are byte-identical) scaled so that
activations stay finite; the output is untrained noise, which is all a benchmark needs.

Formats: llama architecture in F32 / F16 / Q8_0 / Q4_0 / Q4_1 (quantized with
``gguf.quants``), and the ``bitnet`` architecture with ternary TQ1_0 / TQ2_0 linear layers
(weights drawn directly from {-1, 0, +1} × scale, so quantization is lossless).

Usage::

    write_llama_gguf(tmp / "tiny.gguf", quant="Q4_0")          # ~1 MB, loads in ms
    write_bitnet_gguf(tmp / "tiny-tq2.gguf", quant="TQ2_0")
    spec = SyntheticSpec(arch="bitnet", quant="TQ1_0", n_embd=1024, n_layers=16, n_ff=2816)
    spec.params  # parameter count, to size study models
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gguf
import numpy as np

from aria.convert.hparams import LlamaHparams, write_llama_header
from aria.convert.synthetic_vocab import (
    BOS_TOKEN,
    CHATML_TEMPLATE,
    IM_END_TOKEN,
    UNK_TOKEN,
    build_vocab,
)

__all__ = [
    "BITNET_QUANTS",
    "Arch",
    "LLAMA_QUANTS",
    "SyntheticSpec",
    "write_bitnet_gguf",
    "write_gguf",
    "write_llama_gguf",
]

Arch = Literal["llama", "bitnet"]
LlamaQuant = Literal["F32", "F16", "Q8_0", "Q4_0", "Q4_1"]
BitnetQuant = Literal["TQ1_0", "TQ2_0"]
LLAMA_QUANTS: tuple[str, ...] = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1")
BITNET_QUANTS: tuple[str, ...] = ("TQ1_0", "TQ2_0")
_TERNARY_ROW = 256  # TQ1_0/TQ2_0 super-block: every ternary row is a multiple of it
_QUANT_ROW = 32  # Q8_0/Q4_x block

_FILE_TYPES = {
    "F32": "ALL_F32",
    "F16": "MOSTLY_F16",
    "Q8_0": "MOSTLY_Q8_0",
    "Q4_0": "MOSTLY_Q4_0",
    "Q4_1": "MOSTLY_Q4_1",
    "TQ1_0": "MOSTLY_TQ1_0",
    "TQ2_0": "MOSTLY_TQ2_0",
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape and format of one generated model; ``params`` sizes it before writing."""

    arch: Arch = "llama"
    quant: str = "Q8_0"
    n_embd: int = 256
    n_layers: int = 2
    n_head: int = 4
    n_head_kv: int | None = None
    n_ff: int = 512
    n_ctx: int = 512
    seed: int = 0
    license: str = "apache-2.0"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in ("llama", "bitnet"):
            raise ValueError(f"arch must be 'llama' or 'bitnet', not {self.arch!r}")
        allowed = LLAMA_QUANTS if self.arch == "llama" else BITNET_QUANTS
        if self.quant not in allowed:
            raise ValueError(f"{self.arch} models support {', '.join(allowed)}, not {self.quant}")
        if min(self.n_embd, self.n_layers, self.n_head, self.n_ff, self.n_ctx) < 1:
            raise ValueError("n_embd, n_layers, n_head, n_ff and n_ctx must be positive")
        if self.n_embd % self.n_head or self.n_head % self.kv_heads:
            raise ValueError("n_head must divide n_embd, and n_head_kv must divide n_head")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("the head size (n_embd / n_head) must be even for RoPE")
        row = _TERNARY_ROW if self.arch == "bitnet" else _QUANT_ROW
        rows = (self.n_embd, self.n_ff)
        if self.quant not in ("F32", "F16") and any(size % row for size in rows):
            raise ValueError(f"{self.quant} needs n_embd and n_ff to be multiples of {row}")

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_head_kv is None else self.n_head_kv

    @property
    def n_embd_kv(self) -> int:
        return self.n_embd // self.n_head * self.kv_heads

    @property
    def n_vocab(self) -> int:
        return len(build_vocab())

    @property
    def model_name(self) -> str:
        return self.name or f"aria-synthetic-{self.arch}-{self.quant.lower()}-{self.params}"

    @property
    def hparams(self) -> LlamaHparams:
        head = self.n_embd // self.n_head
        return LlamaHparams(
            self.n_vocab, self.n_embd, self.n_layers, self.n_head, self.kv_heads, head,
            self.n_ff, self.n_ctx, rope_theta=10000.0, rms_eps=1e-5,
        )  # fmt: skip

    @property
    def params(self) -> int:
        """Total parameter count, embeddings included (tied output, as written)."""
        return sum(int(np.prod(shape)) for _, shape, _ in self.tensor_plan())

    def tensor_plan(self) -> Iterator[tuple[str, tuple[int, ...], str]]:
        """(name, numpy shape [out, in], role) for every tensor, in file order."""
        e, kv, ff = self.n_embd, self.n_embd_kv, self.n_ff
        yield "token_embd.weight", (self.n_vocab, e), "embedding"
        yield "output_norm.weight", (e,), "norm"
        bitnet = self.arch == "bitnet"
        for i in range(self.n_layers):
            b = f"blk.{i}."
            yield b + "attn_norm.weight", (e,), "norm"
            yield b + "attn_q.weight", (e, e), "linear"
            yield b + "attn_k.weight", (kv, e), "linear"
            yield b + "attn_v.weight", (kv, e), "linear"
            if bitnet:
                yield b + "attn_sub_norm.weight", (e,), "norm"
            yield b + "attn_output.weight", (e, e), "linear"
            yield b + "ffn_norm.weight", (e,), "norm"
            yield b + "ffn_gate.weight", (ff, e), "linear"
            yield b + "ffn_up.weight", (ff, e), "linear"
            if bitnet:
                yield b + "ffn_sub_norm.weight", (ff,), "norm"
            yield b + "ffn_down.weight", (e, ff), "linear"


def write_gguf(path: str | os.PathLike[str], spec: SyntheticSpec) -> Path:
    """Write ``spec`` as a GGUF file at ``path`` (atomically) and return the path.

    Tensors are generated, quantized and written one at a time, so a 700M-parameter model
    needs only one tensor's worth of memory.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    writer = gguf.GGUFWriter(tmp, spec.arch)
    try:
        _add_metadata(writer, spec)
        plan = list(spec.tensor_plan())
        for name, shape, role in plan:
            qtype = _qtype_for(spec, role)
            nbytes = _nbytes(shape, qtype)
            writer.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        rng = np.random.default_rng(spec.seed)
        for _, shape, role in plan:
            values = _init_values(rng, spec, shape, role)
            writer.write_tensor_data(gguf.quants.quantize(values, _qtype_for(spec, role)))
    finally:
        writer.close()
    os.replace(tmp, target)
    return target


def write_llama_gguf(
    path: str | os.PathLike[str],
    *,
    quant: LlamaQuant = "Q8_0",
    n_embd: int = 256,
    n_layers: int = 2,
    n_head: int = 4,
    n_head_kv: int | None = None,
    n_ff: int = 512,
    n_ctx: int = 512,
    seed: int = 0,
    license: str = "apache-2.0",
    name: str | None = None,
) -> Path:
    """A llama-architecture model (defaults: ~1.5M params, ~1.6 MB at Q8_0)."""
    spec = SyntheticSpec(
        "llama", quant, n_embd, n_layers, n_head, n_head_kv, n_ff, n_ctx, seed, license, name
    )
    return write_gguf(path, spec)


def write_bitnet_gguf(
    path: str | os.PathLike[str],
    *,
    quant: BitnetQuant = "TQ2_0",
    n_embd: int = 256,
    n_layers: int = 2,
    n_head: int = 4,
    n_head_kv: int | None = None,
    n_ff: int = 512,
    n_ctx: int = 512,
    seed: int = 0,
    license: str = "apache-2.0",
    name: str | None = None,
) -> Path:
    """A bitnet-architecture model with ternary linear layers (n_embd, n_ff multiples of 256)."""
    spec = SyntheticSpec(
        "bitnet", quant, n_embd, n_layers, n_head, n_head_kv, n_ff, n_ctx, seed, license, name
    )
    return write_gguf(path, spec)


def _qtype_for(spec: SyntheticSpec, role: str) -> gguf.GGMLQuantizationType:
    q = gguf.GGMLQuantizationType
    if role == "norm":
        return q.F32
    if role == "embedding" and spec.arch == "bitnet":
        return q.F16  # BitNet keeps embeddings in full precision; only linear layers are ternary
    return q[spec.quant]


def _nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * size


def _init_values(
    rng: np.random.Generator, spec: SyntheticSpec, shape: tuple[int, ...], role: str
) -> np.ndarray:
    """Seeded weights with unit-variance outputs (RMS norms keep every layer finite)."""
    if role == "norm":
        return np.ones(shape, dtype=np.float32)
    fan_in = shape[-1]
    if role == "linear" and spec.arch == "bitnet":
        # Exactly ternary per 256-value block: the TQ quantizers reproduce it losslessly.
        trits = rng.integers(-1, 2, size=shape, dtype=np.int8).astype(np.float32)
        return trits * np.float32(1.0 / np.sqrt(fan_in * 2.0 / 3.0))
    values = rng.standard_normal(size=shape, dtype=np.float32)
    return values * np.float32(1.0 / np.sqrt(fan_in))


def _add_metadata(writer: gguf.GGUFWriter, spec: SyntheticSpec) -> None:
    vocab = build_vocab()
    write_llama_header(
        writer,
        spec.hparams,
        name=spec.model_name,
        licence=spec.license,
        description="Synthetic random-weight model generated by aria.convert.synthetic",
        file_type=int(gguf.LlamaFileType[_FILE_TYPES[spec.quant]]),
    )
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_scores(list(vocab.scores))
    writer.add_token_types(list(vocab.types))
    writer.add_unk_token_id(vocab.id_of(UNK_TOKEN))
    writer.add_bos_token_id(vocab.id_of(BOS_TOKEN))
    writer.add_eos_token_id(vocab.id_of(IM_END_TOKEN))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(True)
    writer.add_chat_template(CHATML_TEMPLATE)
