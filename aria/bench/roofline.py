"""Memory-bandwidth roofline for decode (pure).

Generating one token reads every weight the forward pass touches once, plus the KV cache
of the tokens so far. On a CPU that traffic, not arithmetic, bounds decode speed:
``ceiling = bandwidth / bytes_per_token``. Comparing the measured rate to the ceiling
tells how much speed is left on the table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelFootprint", "Roofline", "decode_roofline"]


@dataclass(frozen=True)
class ModelFootprint:
    """Bytes a decode step reads, from the model file's tensor table."""

    weight_bytes: int  # every tensor's bytes, as stored
    embedding_bytes: int  # token_embd
    embedding_row_bytes: int  # one token's row of token_embd
    tied_output: bool  # no output.weight: the logits re-read all of token_embd
    n_layers: int
    n_embd_kv: int  # K (and V) width per layer: head_count_kv * head size
    n_params: int = 0
    kv_bytes_per_value: int = 2  # llama.cpp's default F16 KV cache

    @property
    def weight_bytes_per_token(self) -> int:
        """Weights touched per token: the embedding lookup reads one row, unless tied."""
        if self.tied_output:
            return self.weight_bytes
        return self.weight_bytes - self.embedding_bytes + self.embedding_row_bytes

    def kv_bytes_at(self, context: float) -> float:
        """KV-cache bytes read when attending over ``context`` earlier tokens."""
        return 2.0 * self.n_layers * self.n_embd_kv * self.kv_bytes_per_value * context


@dataclass(frozen=True)
class Roofline:
    bandwidth_bytes_s: float
    bytes_per_token: float
    ceiling_tok_s: float
    measured_tok_s: float

    @property
    def fraction(self) -> float:
        return self.measured_tok_s / self.ceiling_tok_s

    def as_dict(self) -> dict[str, float]:
        return {
            "bandwidth_gb_s": self.bandwidth_bytes_s / 1e9,
            "bytes_per_token": self.bytes_per_token,
            "ceiling_tok_s": self.ceiling_tok_s,
            "measured_tok_s": self.measured_tok_s,
            "fraction": self.fraction,
        }


def decode_roofline(
    footprint: ModelFootprint,
    *,
    bandwidth_bytes_s: float,
    measured_tok_s: float,
    prompt_tokens: int,
    gen_tokens: int,
) -> Roofline:
    """Ceiling and achieved fraction for decoding ``gen_tokens`` after ``prompt_tokens``.

    The KV part uses the average context over the decode (prompt + half the generation).

    Raises:
        ValueError: a non-positive bandwidth.
    """
    if bandwidth_bytes_s <= 0:
        raise ValueError("memory bandwidth must be positive")
    average_context = prompt_tokens + gen_tokens / 2.0
    per_token = footprint.weight_bytes_per_token + footprint.kv_bytes_at(average_context)
    return Roofline(
        bandwidth_bytes_s=bandwidth_bytes_s,
        bytes_per_token=per_token,
        ceiling_tok_s=bandwidth_bytes_s / per_token,
        measured_tok_s=measured_tok_s,
    )
