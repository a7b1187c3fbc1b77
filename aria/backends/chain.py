"""Serve a request from the first model of a fallback chain that can take it.

A candidate is skipped when it cannot serve for a reason that is not the client's
fault (an *availability* error, ``AriaError.falls_back``): not installed, its backend
failed to start or does not fit, it crashed before producing anything, the peer that
offers it is unreachable or refused, no placement over peers holds it. Errors in the
request itself (too long, bad grammar) are raised at once, wherever they happened (a
peer's ``context_length_exceeded`` too): another candidate would refuse them as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import anyio

from aria.catalog.entries import ModelId
from aria.errors import AriaError, ModelNotInstalled, RoutingError

__all__ = ["Attempt", "Candidate", "Opened", "open_first"]

T = TypeVar("T")


class Candidate(Protocol):
    """A chain entry: a model, and where it runs (``str(where)``: ``local``, ``peer …``)."""

    @property
    def model_id(self) -> ModelId: ...

    @property
    def where(self) -> object: ...


C = TypeVar("C", bound=Candidate)

_MISSING = ModelNotInstalled.code


@dataclass(frozen=True)
class Attempt:
    """A candidate that was skipped, and why (its error code)."""

    model_id: ModelId
    where: str
    code: str
    message: str

    @property
    def candidate(self) -> str:
        """``model`` for a local candidate, ``model@where`` otherwise."""
        return self.model_id if self.where == "local" else f"{self.model_id}@{self.where}"


@dataclass
class Opened(Generic[T]):
    """The value opened on ``model_id``; ``stack`` releases it (the backend lease)."""

    model_id: ModelId
    value: T
    skipped: tuple[Attempt, ...]
    stack: AsyncExitStack

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.stack.aclose()


async def open_first(
    candidates: Sequence[C],
    open_one: Callable[[C, AsyncExitStack], Awaitable[T]],
) -> Opened[T]:
    """Call ``open_one`` on each candidate until one succeeds.

    Raises:
        The candidate's own error when there was only one, the last one's when none was
        installed (``ModelNotInstalled``, naming the command); otherwise ``RoutingError``
        listing why each candidate was skipped.
    """
    skipped: list[Attempt] = []
    last: AriaError | None = None
    for candidate in candidates:
        model_id = candidate.model_id
        stack = AsyncExitStack()
        try:
            value = await open_one(candidate, stack)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            if not isinstance(exc, AriaError) or not exc.falls_back:
                raise
            skipped.append(Attempt(model_id, str(candidate.where), exc.code, exc.message))
            last = exc
            continue
        return Opened(model_id, value, tuple(skipped), stack)
    # Nothing installed at all: the last resort's own error says what to download.
    if last is not None and (len(skipped) == 1 or all(a.code == _MISSING for a in skipped)):
        raise last
    reasons = "; ".join(f"{a.candidate}: {a.message}" for a in skipped) or "no candidate model"
    raise RoutingError(f"no model could serve the request ({reasons})")
