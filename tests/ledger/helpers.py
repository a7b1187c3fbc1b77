"""Receipts for ledger tests (real bodies, real keys)."""

from __future__ import annotations

import secrets

from aria.ledger import Energy, ModelRef, Receipt, RunPlace, sha256_hex


def receipt(
    *,
    model: str = "tiny",
    role: str = "local",
    peer: str | None = None,
    completion: int = 12,
    millijoules: int = 500,
    text: str = "hello",
) -> Receipt:
    return Receipt.model_validate(
        {
            "id": secrets.token_hex(16),
            "role": role,
            "origin": "peer" if role == "served" else "api",
            "model": ModelRef(id=model, sha256="ab" * 32),
            "ran_on": RunPlace(where="local"),
            "peer": peer,
            "prompt_tokens": 7,
            "completion_tokens": completion,
            "finish": "stop",
            "started_ms": 1_700_000_000_000,
            "duration_ms": 420,
            "energy": Energy(millijoules=millijoules, source="estimate", label="ESTIMATE: test"),
            "prompt_sha256": sha256_hex("prompt"),
            "output_sha256": sha256_hex(text),
        }
    )
