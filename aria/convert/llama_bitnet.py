"""Convert a Llama-architecture BitNet checkpoint (Falcon3 1.58-bit, Falcon-E) to a
llama-architecture GGUF with TQ2_0/TQ1_0 linear layers that mainline llama.cpp runs.

Why this is the same network: these checkpoints are ``LlamaForCausalLM`` whose linear
layers transformers replaces by ``BitLinear`` (``quantization_config.quant_method =
"bitnet"``): ternary weights divided by a per-tensor scale, applied to activations
quantized to 8 bits per token. Falcon-E's authors removed BitNet's extra norms inside
those layers to stay Llama-compatible (Falcon-Edge blog post), and Falcon3 1.58-bit
was trained the same way. llama.cpp's llama graph with TQ weights computes exactly
that: ternary weights times one scale, activations quantized to 8 bits (Q8_K, per
256 values, which is finer than per token). Norms, embeddings and the output head
keep their published precision (BF16 stays BF16: lossless).

The conversion streams: one tensor at a time, its rows in bounded chunks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from aria.convert.checkpoint import Checkpoint
from aria.convert.hparams import LlamaHparams, write_llama_header
from aria.convert.ternary import TERNARY_ROW, TernaryQuant, ternary_blocks
from aria.convert.vocab import read_bpe_vocabulary
from aria.errors import StoreError

__all__ = ["ConversionSummary", "LlamaShape", "convert_llama_bitnet", "read_shape"]

_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_FILE_TYPES = {"TQ1_0": gguf.LlamaFileType.MOSTLY_TQ1_0, "TQ2_0": gguf.LlamaFileType.MOSTLY_TQ2_0}
_FLOAT_TYPES = {
    "BF16": gguf.GGMLQuantizationType.BF16,
    "F16": gguf.GGMLQuantizationType.F16,
    "F32": gguf.GGMLQuantizationType.F32,
}


@dataclass(frozen=True)
class LlamaShape(LlamaHparams):
    """The hyper-parameters of the checkpoint, as the converter and the reference need."""

    tied: bool
    scale_divides: bool  # BitLinear divides by weight_scale; AutoBitLinear multiplies


@dataclass(frozen=True)
class ConversionSummary:
    path: Path
    shape: LlamaShape
    ternary_tensors: int
    quant: str


def read_shape(config: dict[str, Any]) -> LlamaShape:
    """Validate that ``config`` describes a network the llama graph computes exactly.

    Raises:
        StoreError: another architecture, activation, RoPE scaling, biases, per-layer
            norms inside the linear layers, or not a packed ternary checkpoint.
    """
    quant = config.get("quantization_config") or {}

    def refuse(why: str) -> StoreError:
        return StoreError(f"this checkpoint cannot be converted for llama.cpp: {why}")

    if "LlamaForCausalLM" not in (config.get("architectures") or []):
        raise refuse(f"architecture {config.get('architectures')} is not LlamaForCausalLM")
    if quant.get("quant_method") != "bitnet":
        raise refuse("its quantization_config is not quant_method = 'bitnet'")
    if quant.get("use_rms_norm"):
        raise refuse("its BitLinear layers normalize their input (use_rms_norm)")
    if quant.get("quantization_mode", "offline") != "offline":
        raise refuse("its weights are not stored quantized (quantization_mode is online)")
    if config.get("hidden_act", "silu") != "silu":
        raise refuse(f"activation {config.get('hidden_act')!r}; the llama graph uses SiLU")
    scaling = config.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
        raise refuse(f"RoPE scaling {scaling} is not converted")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise refuse("linear layers with biases are not converted")
    try:
        n_embd = int(config["hidden_size"])
        n_head = int(config["num_attention_heads"])
        shape = LlamaShape(
            n_vocab=int(config["vocab_size"]),
            n_embd=n_embd,
            n_layers=int(config["num_hidden_layers"]),
            n_head=n_head,
            n_head_kv=int(config.get("num_key_value_heads") or n_head),
            head_dim=int(config.get("head_dim") or n_embd // n_head),
            n_ff=int(config["intermediate_size"]),
            n_ctx=int(config.get("max_position_embeddings") or 2048),
            rope_theta=float(config.get("rope_theta") or 10000.0),
            rms_eps=float(config.get("rms_norm_eps") or 1e-6),
            tied=bool(config.get("tie_word_embeddings", False)),
            scale_divides=quant.get("linear_class", "bitlinear") == "bitlinear",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise refuse(f"config.json lacks or garbles {exc}") from None
    if shape.head_dim % 2 or shape.n_head % shape.n_head_kv:
        raise refuse("the attention head layout is not a llama one")
    for size in (shape.n_embd, shape.n_ff, shape.n_head * shape.head_dim):
        if size % TERNARY_ROW:
            raise refuse(f"a ternary row of {size} values is not a multiple of {TERNARY_ROW}")
    return shape


def convert_llama_bitnet(
    folder: Path,
    out: Path,
    *,
    quant: TernaryQuant = "TQ2_0",
    pre_tokenizer: str,
    name: str,
    licence: str,
) -> ConversionSummary:
    """Write the GGUF of the checkpoint in ``folder`` to ``out`` (atomically).

    Raises:
        StoreError: the checkpoint is not convertible (see :func:`read_shape`), or a tensor
            is missing, of the wrong dtype or shape.
    """
    checkpoint = Checkpoint.open(folder)
    shape = read_shape(checkpoint.config)
    vocabulary = read_bpe_vocabulary(folder, shape.n_vocab)
    plan = _plan(checkpoint, shape, quant)
    tmp = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(tmp, "llama")
    try:
        _metadata(writer, shape, quant, name, licence)
        vocabulary.add_to(writer, pre_tokenizer)
        for tensor in plan:
            writer.add_tensor_info(
                tensor.gguf_name, tensor.byte_shape, np.dtype(np.uint8), tensor.nbytes, tensor.qtype
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in plan:
            writer.write_tensor_data(tensor.data(checkpoint, shape))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, out)
    ternary = sum(1 for t in plan if t.qtype.name == quant)
    return ConversionSummary(out, shape, ternary, quant)


@dataclass(frozen=True)
class _Planned:
    source: str
    gguf_name: str
    shape: tuple[int, ...]  # numpy order (rows, columns)
    qtype: gguf.GGMLQuantizationType
    nbytes: int
    row_order: Any = None  # for q/k: llama.cpp's rotary layout

    @property
    def byte_shape(self) -> tuple[int, ...]:
        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        return (*self.shape[:-1], self.shape[-1] // block * size)

    def data(self, checkpoint: Checkpoint, shape: LlamaShape) -> np.ndarray[Any, Any]:
        if self.qtype in (gguf.GGMLQuantizationType.TQ1_0, gguf.GGMLQuantizationType.TQ2_0):
            scale = float(checkpoint.float32(self.source + "_scale").reshape(-1)[0])
            divisor = scale if shape.scale_divides else 1.0 / scale
            packed = checkpoint.array(self.source)
            chunks = ternary_blocks(packed, divisor, self.qtype.name, row_order=self.row_order)  # type: ignore[arg-type]
            data = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        elif self.qtype is gguf.GGMLQuantizationType.F32:
            data = checkpoint.float32(self.source).reshape(-1).view(np.uint8)
        else:
            data = np.asarray(checkpoint.array(self.source)).reshape(-1).view(np.uint8)
        if data.nbytes != self.nbytes:
            raise StoreError(f"{self.source} converted to {data.nbytes} bytes, not {self.nbytes}")
        return data


def _plan(checkpoint: Checkpoint, shape: LlamaShape, quant: TernaryQuant) -> list[_Planned]:
    """Every output tensor, with its source and size, checked against the config."""
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, shape.n_layers)
    qtype = gguf.GGMLQuantizationType[quant]
    plan: list[_Planned] = []

    def expect(source: str, dims: tuple[int, ...], dtypes: tuple[str, ...]) -> None:
        if source not in checkpoint:
            raise StoreError(f"the checkpoint has no tensor {source}")
        if checkpoint.dtype(source) not in dtypes or checkpoint.shape(source) != dims:
            raise StoreError(
                f"{source} is {checkpoint.dtype(source)}{list(checkpoint.shape(source))}, "
                f"expected {'/'.join(dtypes)}{list(dims)}"
            )

    def floating(source: str, dims: tuple[int, ...], *, norm: bool = False) -> None:
        expect(source, dims, tuple(_FLOAT_TYPES))
        kind = "F32" if norm else checkpoint.dtype(source)  # norms are F32 in every GGUF
        target = _FLOAT_TYPES[kind]
        nbytes = int(np.prod(dims)) * (4 if kind == "F32" else 2)
        plan.append(_Planned(source, _gguf_name(names, source), dims, target, nbytes))

    def ternary(source: str, rows: int, cols: int, order: Any = None) -> None:
        expect(source, (rows // 4, cols), ("U8",))
        expect(source + "_scale", (1,), tuple(_FLOAT_TYPES))
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        nbytes = rows * cols // block * size
        plan.append(_Planned(source, _gguf_name(names, source), (rows, cols), qtype, nbytes, order))

    e, ff, q, kv = (
        shape.n_embd,
        shape.n_ff,
        shape.n_head * shape.head_dim,
        shape.n_head_kv * shape.head_dim,
    )
    floating("model.embed_tokens.weight", (shape.n_vocab, e))
    floating("model.norm.weight", (e,), norm=True)
    if not shape.tied and "lm_head.weight" in checkpoint:
        floating("lm_head.weight", (shape.n_vocab, e))
    for i in range(shape.n_layers):
        p = f"model.layers.{i}."
        floating(p + "input_layernorm.weight", (e,), norm=True)
        ternary(p + "self_attn.q_proj.weight", q, e, rotary_order(q, shape.n_head))
        ternary(p + "self_attn.k_proj.weight", kv, e, rotary_order(kv, shape.n_head_kv))
        ternary(p + "self_attn.v_proj.weight", kv, e)
        ternary(p + "self_attn.o_proj.weight", e, q)
        floating(p + "post_attention_layernorm.weight", (e,), norm=True)
        ternary(p + "mlp.gate_proj.weight", ff, e)
        ternary(p + "mlp.up_proj.weight", ff, e)
        ternary(p + "mlp.down_proj.weight", e, ff)
    known = {t.source for t in plan} | {t.source + "_scale" for t in plan}
    extra = [
        n for n in checkpoint.names if n not in known and not n.endswith("rotary_emb.inv_freq")
    ]
    if extra:
        raise StoreError(
            f"the checkpoint has tensors the llama graph has no place for: {extra[:3]}"
        )
    return plan


def rotary_order(rows: int, n_head: int) -> np.ndarray[Any, Any]:
    """Row order that turns Hugging Face's half-split RoPE layout into llama.cpp's
    interleaved one (the permutation llama.cpp's converter applies to q and k)."""
    head = rows // n_head
    return np.arange(rows).reshape(n_head, 2, head // 2).swapaxes(1, 2).reshape(-1)


def _gguf_name(names: gguf.TensorNameMap, source: str) -> str:
    mapped = names.get_name(source, try_suffixes=(".weight",))
    if mapped is None:
        raise StoreError(f"no GGUF name for {source}")
    return mapped


def _metadata(
    writer: gguf.GGUFWriter, shape: LlamaShape, quant: str, name: str, licence: str
) -> None:
    description = "Converted by ARIA from the published ternary checkpoint"
    file_type = int(_FILE_TYPES[quant])
    write_llama_header(
        writer, shape, name=name, licence=licence, description=description, file_type=file_type
    )
