"""A stand-in embedding model for the memory's unit tests (the real one is tested too:
test_memory_real.py, tests/convert/test_convert_sentence_bert.py, benchmarks/memory_eval.py).

Each word is hashed into a few of 128 dimensions, so texts that share words are similar
and others are nearly orthogonal: enough to exercise every code path deterministically.
"""

from __future__ import annotations

import hashlib

import numpy as np

from aria.memory.text import keywords

DIM = 128


class FakeEmbedder:
    def __init__(self, model_id: str = "fake-embedder") -> None:
        self._model_id = model_id
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [vector(text) for text in texts]


def vector(text: str) -> list[float]:
    out = np.zeros(DIM, dtype=np.float64)
    for word in keywords(text) or ["empty"]:
        digest = hashlib.sha256(word[:5].encode()).digest()
        for i in range(3):
            out[digest[i] % DIM] += 1.0
    return [float(x) for x in out / np.linalg.norm(out)]


class FakeModels:
    """Model reminders' view of a node whose store says ``installed``."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.present: set[str] = set()

    def resolve(self, name: str) -> str | None:
        return next((m for m in self.known if m.lower() == name.lower()), None)

    def installed(self, model_id: str) -> bool:
        return model_id in self.present
