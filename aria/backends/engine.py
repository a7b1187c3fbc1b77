"""What a worker needs from an inference engine; each engine module implements it.

``generate`` is a generator of text pieces whose *return value* is the
:class:`Finished` summary, so the worker streams pieces as they come and reports
usage exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Protocol

from aria.backends.protocol import FinishReason, GenerationJob, WorkerInfo

__all__ = ["EmbeddingCancelled", "Embeddings", "Engine", "Finished"]


class EmbeddingCancelled(Exception):
    """``Engine.embed`` stopped because the request was cancelled."""


@dataclass(frozen=True)
class Finished:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class Engine(Protocol):
    info: WorkerInfo

    def generate(
        self, job: GenerationJob, cancelled: Callable[[], bool]
    ) -> Generator[str, None, Finished]:
        """Stream text pieces; stop early (finish ``cancelled``) once ``cancelled()`` is true.

        Raises:
            ContextLengthExceeded: the prompt (plus ``max_tokens``) does not fit.
            InvalidRequest: the chat template or grammar rejects the request.
        """
        ...

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        """One normalized vector per text (the model's pooling, mean by default).

        Raises:
            EmbeddingCancelled: ``cancelled()`` became true between two chunks.
            ContextLengthExceeded: a text is longer than the embedding context.
        """
        ...

    def close(self) -> None: ...
