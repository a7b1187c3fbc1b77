"""Thin, typed handles on llama.cpp's multi-sequence API (llama-cpp-python's low-level bindings).

The high-level ``Llama`` class owns one context with one sequence; serving several
requests in one batch needs what it hides: a context with ``n_seq_max`` sequences over a
unified KV cache, a ``llama_batch`` whose tokens each name their sequence and position,
per-sequence KV removal, and one native sampler chain per sequence. Each class here owns
exactly one native object and frees it in ``close``; nothing here knows about requests.

Importing this module loads the native library: only the worker process does.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp as native
import numpy as np
import numpy.typing as npt

__all__ = ["NativeContext", "NativeModel", "SamplerChain", "SamplingParams", "TokenBatch"]

# llama-cpp-python forwards llama.cpp's log to stderr at this logger's level.
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
native.llama_backend_init()

_F16_BYTES = 2


class NativeModel:
    """Weights and vocabulary of one GGUF file (mmap-ed, shared by every context)."""

    def __init__(
        self, path: str, *, n_gpu_layers: int = 0, tensor_split: Sequence[float] = ()
    ) -> None:
        params = native.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        if tensor_split:
            split = (ctypes.c_float * native.LLAMA_MAX_DEVICES)(*tensor_split)
            self._split = split  # keep it alive while the model loads
            params.tensor_split = split
        model = native.llama_model_load_from_file(path.encode("utf-8"), params)
        if not model:
            raise ValueError(f"llama.cpp could not load {path}")
        self.ptr: Any = model
        self.vocab: Any = native.llama_model_get_vocab(model)
        self.n_vocab = int(native.llama_vocab_n_tokens(self.vocab))
        self.n_embd = int(native.llama_model_n_embd(model))
        self.metadata = self._read_metadata()
        self._pieces: dict[int, bytes] = {}

    def _read_metadata(self) -> dict[str, str]:
        size = 1024
        buffer = ctypes.create_string_buffer(size)
        values: dict[str, str] = {}
        for index in range(native.llama_model_meta_count(self.ptr)):
            keys = native.llama_model_meta_key_by_index(self.ptr, index, buffer, size)
            key = buffer.value.decode("utf-8", errors="replace") if keys >= 0 else ""
            needed = native.llama_model_meta_val_str_by_index(self.ptr, index, buffer, size)
            if needed >= size:
                bigger = ctypes.create_string_buffer(needed + 1)
                native.llama_model_meta_val_str_by_index(self.ptr, index, bigger, needed + 1)
                values[key] = bigger.value.decode("utf-8", errors="replace")
            elif needed >= 0:
                values[key] = buffer.value.decode("utf-8", errors="replace")
        return values

    def kv_bytes_per_token(self) -> int:
        """K and V (f16) of every layer for one token of one sequence."""
        arch = self.metadata.get("general.architecture", "")
        n_head = max(1, int(native.llama_model_n_head(self.ptr)))
        head = self.n_embd // n_head
        key = int(self.metadata.get(f"{arch}.attention.key_length", head))
        value = int(self.metadata.get(f"{arch}.attention.value_length", head))
        n_head_kv = int(native.llama_model_n_head_kv(self.ptr))
        n_layer = int(native.llama_model_n_layer(self.ptr))
        return n_layer * n_head_kv * (key + value) * _F16_BYTES

    def tokenize(self, text: bytes, *, add_special: bool, parse_special: bool) -> list[int]:
        room = len(text) + 8
        buffer = (native.llama_token * room)()
        count = native.llama_tokenize(
            self.vocab, text, len(text), buffer, room, add_special, parse_special
        )
        if count < 0:
            room = -count
            buffer = (native.llama_token * room)()
            count = native.llama_tokenize(
                self.vocab, text, len(text), buffer, room, add_special, parse_special
            )
        return list(buffer[:count])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (cached: the hot path detokenizes one token per step)."""
        if not special and (known := self._pieces.get(token)) is not None:
            return known
        buffer = ctypes.create_string_buffer(64)
        size = native.llama_token_to_piece(self.vocab, token, buffer, 64, 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = native.llama_token_to_piece(self.vocab, token, buffer, -size, 0, special)
        data = buffer.raw[:size]
        if not special:
            self._pieces[token] = data
        return data

    def is_eog(self, token: int) -> bool:
        return bool(native.llama_vocab_is_eog(self.vocab, token))

    @property
    def bos(self) -> int:
        return int(native.llama_vocab_bos(self.vocab))

    @property
    def eos(self) -> int:
        return int(native.llama_vocab_eos(self.vocab))

    def close(self) -> None:
        if self.ptr:
            native.llama_model_free(self.ptr)
            self.ptr = None


class NativeContext:
    """One context: ``n_seq_max`` sequences sharing one unified KV cache of ``n_ctx`` cells.

    The cache is unified so that one batch can mix any sequences (a split cache needs
    consecutive sequence ids and equal token counts per sequence to share a batch).
    """

    def __init__(
        self,
        model: NativeModel,
        *,
        n_ctx: int,
        n_seq_max: int,
        n_batch: int,
        threads: int,
        flash_attn: bool,
    ) -> None:
        params = native.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = True
        params.no_perf = True
        params.flash_attn_type = (
            native.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn
            else native.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        context = native.llama_init_from_model(model.ptr, params)
        if not context:
            raise ValueError(f"llama.cpp could not create a context of {n_ctx} cells")
        self.ptr: Any = context
        self._memory = native.llama_get_memory(context)
        self._n_vocab = model.n_vocab

    def decode(self, batch: TokenBatch) -> int:
        """llama.cpp's status: 0 done, 1 no room in the KV cache, 2 aborted, < 0 error."""
        return int(native.llama_decode(self.ptr, batch.native))

    def logits(self, index: int) -> npt.NDArray[np.float32]:
        """The logits row of batch token ``index``, as a writable view (edits reach samplers)."""
        pointer = native.llama_get_logits_ith(self.ptr, index)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def forget(self, seq: int, start: int = 0) -> bool:
        """Drop ``seq``'s cells from position ``start`` on; False if the model cannot cut
        a sequence in the middle (recurrent models), in which case nothing changed."""
        return bool(native.llama_memory_seq_rm(self._memory, seq, start, -1))

    def clear(self) -> None:
        """Empty the cache: the next tokens are placed from its first cell on."""
        native.llama_memory_clear(self._memory, True)

    def close(self) -> None:
        if self.ptr:
            native.llama_free(self.ptr)
            self.ptr = None


class TokenBatch:
    """A ``llama_batch`` of up to ``capacity`` tokens, each in one sequence."""

    def __init__(self, capacity: int) -> None:
        self.native: Any = native.llama_batch_init(capacity, 0, 1)
        self.capacity = capacity
        self._tokens = np.ctypeslib.as_array(self.native.token, shape=(capacity,))
        self._positions = np.ctypeslib.as_array(self.native.pos, shape=(capacity,))
        self._seq_counts = np.ctypeslib.as_array(self.native.n_seq_id, shape=(capacity,))
        self._logits = np.ctypeslib.as_array(self.native.logits, shape=(capacity,))
        self._seq_counts[:] = 1
        self._seq_ids = self.native.seq_id
        self.size = 0

    def clear(self) -> None:
        self.size = 0
        self.native.n_tokens = 0

    def add(self, tokens: Sequence[int], start: int, seq: int, *, logits: bool) -> int:
        """Append ``tokens`` of ``seq`` at positions ``start...``; with ``logits``, the last
        one's logits are computed. Returns the batch index of the last token."""
        begin, end = self.size, self.size + len(tokens)
        if end > self.capacity:
            raise ValueError(f"a batch holds {self.capacity} tokens, not {end}")
        self._tokens[begin:end] = tokens
        self._positions[begin:end] = np.arange(start, start + len(tokens), dtype=np.int32)
        self._logits[begin:end] = 0
        for index in range(begin, end):
            self._seq_ids[index][0] = seq
        if logits:
            self._logits[end - 1] = 1
        self.size = end
        self.native.n_tokens = end
        return end - 1

    def close(self) -> None:
        if self.native is not None:
            native.llama_batch_free(self.native)
            self.native = None


@dataclass(frozen=True)
class SamplingParams:
    """One sequence's sampling, llama.cpp's defaults for what OpenAI does not expose."""

    temperature: float
    top_p: float
    seed: int
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_k: int = 40
    min_p: float = 0.05
    penalty_last_n: int = 64


class SamplerChain:
    """A native sampler chain: penalties, grammar, then greedy or top-k/top-p/min-p/temp/dist.

    Raises:
        ValueError: the grammar does not parse (llama.cpp returns no sampler).
    """

    def __init__(self, model: NativeModel, params: SamplingParams, grammar: str | None) -> None:
        self.ptr: Any = native.llama_sampler_chain_init(native.llama_sampler_chain_default_params())
        try:
            if params.presence_penalty or params.frequency_penalty:
                self._add(
                    native.llama_sampler_init_penalties(
                        params.penalty_last_n,
                        1.0,
                        params.frequency_penalty,
                        params.presence_penalty,
                    )
                )
            if grammar is not None:
                parsed = native.llama_sampler_init_grammar(
                    model.vocab, grammar.encode("utf-8"), b"root"
                )
                if not parsed:
                    raise ValueError("the grammar does not parse")
                self._add(parsed)
            if params.temperature <= 0.0:
                self._add(native.llama_sampler_init_greedy())
            else:
                self._add(native.llama_sampler_init_top_k(params.top_k))
                self._add(native.llama_sampler_init_top_p(params.top_p, 1))
                self._add(native.llama_sampler_init_min_p(params.min_p, 1))
                self._add(native.llama_sampler_init_temp(params.temperature))
                self._add(native.llama_sampler_init_dist(params.seed & 0xFFFFFFFF))
        except BaseException:
            self.close()
            raise

    def _add(self, sampler: Any) -> None:
        native.llama_sampler_chain_add(self.ptr, sampler)

    def sample(self, context: NativeContext, index: int) -> int:
        """Pick the next token from batch token ``index``'s logits and accept it."""
        return int(native.llama_sampler_sample(self.ptr, context.ptr, index))

    def close(self) -> None:
        if self.ptr:
            native.llama_sampler_free(self.ptr)  # frees the samplers it holds too
            self.ptr = None
