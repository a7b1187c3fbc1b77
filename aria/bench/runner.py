"""One model loaded in this process through llama.cpp's C API, driven token by token.

The benchmark needs what the high-level ``llama_cpp.Llama`` hides: exactly P prompt
tokens, G single-token decode steps with greedy choice, the weight-repacking switch
(``use_extra_bufts``) and thread changes without reloading the model.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from aria.errors import BackendError, BackendUnavailable, InvalidRequest

__all__ = ["LlamaRunner", "RunnerOptions", "llama_system_info"]


@dataclass(frozen=True)
class RunnerOptions:
    """How the model is loaded; each field is a tuning knob the roofline study varies."""

    threads: int
    n_ctx: int = 512
    n_batch: int = 512
    use_mmap: bool = True
    use_mlock: bool = False
    repack: bool = True  # llama.cpp "extra buffer types": CPU weight repacking

    def as_dict(self) -> dict[str, object]:
        return {
            "threads": self.threads,
            "n_ctx": self.n_ctx,
            "n_batch": self.n_batch,
            "use_mmap": self.use_mmap,
            "use_mlock": self.use_mlock,
            "repack": self.repack,
        }


def llama_system_info() -> str:
    """llama.cpp's build/ISA summary (e.g. ``CPU : SSE3 = 1 | AVX2 = 1 | ...``)."""
    import llama_cpp

    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace").strip()


class LlamaRunner:
    """Owns a llama.cpp model + context; close it (or use ``with``) to free them."""

    def __init__(self, path: Path, options: RunnerOptions) -> None:
        import llama_cpp

        self._ll: Any = llama_cpp
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # keep stderr readable
        llama_cpp.llama_backend_init()
        self.path = path
        self.options = options
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.use_extra_bufts = options.repack
        mparams.load_mode = _load_mode(llama_cpp, options)
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not self._model:
            raise BackendUnavailable(f"llama.cpp could not load {path}")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = options.n_ctx
        cparams.n_batch = options.n_batch
        cparams.n_ubatch = options.n_batch
        cparams.n_threads = cparams.n_threads_batch = options.threads
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise BackendUnavailable(f"llama.cpp could not create a context for {path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self._model))
        self.n_params = int(llama_cpp.llama_model_n_params(self._model))
        self.weight_bytes = int(llama_cpp.llama_model_size(self._model))

    def __enter__(self) -> LlamaRunner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._ctx:
            self._ll.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            self._ll.llama_model_free(self._model)
            self._model = None

    def set_threads(self, threads: int) -> None:
        """Change decode and batch threads in place (the model stays loaded)."""
        self._ll.llama_set_n_threads(self._ctx, threads, threads)

    def prompt_tokens(self, count: int) -> list[int]:
        """Exactly ``count`` tokens: BOS then the bundled English text, repeated as needed."""
        if count < 1:
            raise InvalidRequest("the prompt needs at least one token", param="prompt_tokens")
        text = resources.files("aria.bench").joinpath("data/prompt.txt").read_text("utf-8")
        bos = [int(self._ll.llama_vocab_bos(self._vocab))]
        body = self._tokenize(" ".join(text.split()))
        tokens = bos + body * (count // max(len(body), 1) + 1)
        return tokens[:count]

    def reset(self) -> None:
        """Forget the KV cache so the next run starts from an empty context."""
        self._ll.llama_memory_clear(self._ll.llama_get_memory(self._ctx), True)

    def prefill(self, tokens: Sequence[int]) -> None:
        """Evaluate the prompt in ``n_batch`` chunks."""
        step = self.options.n_batch
        for start in range(0, len(tokens), step):
            self._decode(tokens[start : start + step])

    def next_token(self) -> int:
        """The greedy choice after the last evaluated token."""
        logits = self._ll.llama_get_logits_ith(self._ctx, -1)
        return int(np.ctypeslib.as_array(logits, shape=(self.n_vocab,)).argmax())

    def step(self, token: int) -> int:
        """One decode step: evaluate ``token``, return the greedy next one."""
        self._decode((token,))
        return self.next_token()

    def _decode(self, tokens: Sequence[int]) -> None:
        array = (self._ll.llama_token * len(tokens))(*tokens)
        rc = self._ll.llama_decode(self._ctx, self._ll.llama_batch_get_one(array, len(tokens)))
        if rc != 0:
            raise BackendError(f"llama.cpp decode failed with code {rc} on {self.path.name}")

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens`` (special tokens dropped): the same prompt for an HTTP API."""
        array = (self._ll.llama_token * len(tokens))(*tokens)
        size = 8 * len(tokens) + 16
        buffer = ctypes.create_string_buffer(size)
        n = self._ll.llama_detokenize(self._vocab, array, len(tokens), buffer, size, True, False)
        if n < 0:
            raise BackendError(f"llama.cpp could not detokenize the benchmark prompt ({n})")
        return buffer.raw[:n].decode("utf-8", "replace")

    def _tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        buffer = (self._ll.llama_token * (len(data) + 8))()
        n = self._ll.llama_tokenize(self._vocab, data, len(data), buffer, len(buffer), False, False)
        if n < 0:
            raise BackendError(f"llama.cpp could not tokenize the benchmark prompt ({n})")
        return [int(t) for t in buffer[:n]]


def _load_mode(llama_cpp: Any, options: RunnerOptions) -> int:
    if options.use_mmap and options.use_mlock:
        return int(llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK)
    if options.use_mlock:
        return int(llama_cpp.LLAMA_LOAD_MODE_MLOCK)
    mode = llama_cpp.LLAMA_LOAD_MODE_MMAP if options.use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
    return int(mode)
