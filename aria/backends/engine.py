"""What a worker needs from an inference engine; each engine module implements it.

An :class:`Engine` serves many generation requests at once, in *steps*: the worker
submits requests as they arrive, calls :meth:`Engine.step` while there is work, and
writes the events each step returns (text pieces, ends, per-request failures). A
request joins between two steps and is cancelled between two steps, so the engine
decides how to share the machine among them (llama.cpp decodes all of them in one
batch). Engines that can only run one request at a time implement the simpler
:class:`TextEngine` (a generator per request) and are served through
:class:`aria.backends.sequential.SequentialEngine`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Protocol

from aria.backends.protocol import FinishReason, GenerationJob, WorkerInfo

__all__ = [
    "EmbeddingCancelled",
    "Embeddings",
    "Ended",
    "Engine",
    "Failure",
    "Finished",
    "Piece",
    "StepEvent",
    "TextEngine",
]


class EmbeddingCancelled(Exception):
    """``embed`` stopped because the request was cancelled."""


@dataclass(frozen=True)
class Finished:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens whose K/V were reused, not recomputed


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True)
class Piece:
    """Text request ``request_id`` generated (one token, or a few held back until now)."""

    request_id: int
    text: str


@dataclass(frozen=True)
class Ended:
    request_id: int
    result: Finished


@dataclass(frozen=True)
class Failure:
    """Request ``request_id`` failed; the engine and the other requests carry on."""

    request_id: int
    error: Exception


StepEvent = Piece | Ended | Failure


class Engine(Protocol):
    """Serves several generation requests at once, one step at a time (not thread-safe:
    one thread submits, cancels and steps; ``embed`` may run on another thread)."""

    info: WorkerInfo

    def submit(self, request_id: int, job: GenerationJob) -> None:
        """Queue a generation; it joins the running ones at a coming step.

        Raises:
            ContextLengthExceeded: the prompt (plus ``max_tokens``) does not fit.
            InvalidRequest: the chat template or grammar rejects the request.
        """
        ...

    def cancel(self, request_id: int) -> None:
        """Stop ``request_id`` (queued or running): the next step ends it as ``cancelled``
        and frees what it held. Unknown ids are ignored."""
        ...

    def has_work(self) -> bool:
        """Whether :meth:`step` has anything to do."""
        ...

    def step(self) -> list[StepEvent]:
        """Advance every running request by one token (and let queued ones join)."""
        ...

    def prepare_embeddings(self) -> None:
        """Load what :meth:`embed` needs, if not yet done (called on the stepping thread).

        Raises:
            InvalidRequest: this engine does not embed. Anything else: it could not load.
        """
        ...

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        """One normalized vector per text (the model's pooling, mean by default); may run
        on another thread than the steps.

        Raises:
            EmbeddingCancelled: ``cancelled()`` became true between two chunks.
            ContextLengthExceeded: a text is longer than the embedding context.
        """
        ...

    def close(self) -> None: ...


class TextEngine(Protocol):
    """An engine that runs one request at a time, streaming its text."""

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

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings: ...

    def close(self) -> None: ...
