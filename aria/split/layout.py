"""What placement needs to know about a model, and what each part of it costs in memory.

:class:`ModelLayout` is read from a GGUF file by :mod:`aria.split.gguf_layers`; the
memory arithmetic here is pure, so the planner and its tests use it without files.

llama.cpp places a model as ``n_layers + 1`` *slots*: the repeating blocks, then the
output head (final norm + vocabulary projection; a model with tied embeddings gets a
copy of the token embeddings there). The input embeddings always stay on the
orchestrating process. Besides weights, every device needs its layers' K/V cache and a
compute (scratch) buffer; the device holding the output head also needs room for a
batch of logits.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UBATCH_TOKENS", "ModelLayout"]

# llama-cpp-python's default n_batch/n_ubatch: scratch buffers are sized for it.
UBATCH_TOKENS = 512
_F32 = 4
_F16 = 2


@dataclass(frozen=True)
class ModelLayout:
    """Per-layer weight sizes and the shapes that size caches and scratch buffers."""

    name: str
    layer_bytes: tuple[int, ...]
    input_bytes: int
    output_bytes: int
    n_embd: int
    n_embd_kv: int
    n_head: int
    n_ff: int
    n_vocab: int
    context_length: int

    @property
    def n_layers(self) -> int:
        return len(self.layer_bytes)

    @property
    def weight_bytes(self) -> int:
        """All weights as placed: blocks, input embeddings and output head."""
        return sum(self.layer_bytes) + self.input_bytes + self.output_bytes

    def kv_bytes(self, n_ctx: int) -> int:
        """K and V cache of one layer for ``n_ctx`` tokens (f16, llama.cpp's default)."""
        return 2 * self.n_embd_kv * n_ctx * _F16

    def block_bytes(self, index: int, n_ctx: int) -> int:
        """One repeating block placed on a device: weights plus its K/V cache."""
        return self.layer_bytes[index] + self.kv_bytes(n_ctx)

    def compute_bytes(self, n_ctx: int) -> int:
        """Scratch buffer of one device: attention scores for a batch, FFN and residuals.

        Deliberately high (llama.cpp reuses memory inside the buffer, and an offer must
        never be overrun): for SmolLM2-135M at n_ctx 2048 llama.cpp allocated 64 MiB on a
        worker and 25 MiB on the orchestrator; this gives 78 MiB.
        """
        per_token = n_ctx * self.n_head + 8 * self.n_ff + 16 * self.n_embd
        return UBATCH_TOKENS * per_token * _F32

    def output_compute_bytes(self) -> int:
        """Extra scratch where the head runs: one batch of logits (SmolLM2: 96 MiB
        estimated, 57 MiB measured)."""
        return UBATCH_TOKENS * self.n_vocab * _F32
