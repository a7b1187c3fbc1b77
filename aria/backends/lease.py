"""Using a backend while holding one of its slots: one generation or embedding request.

A :class:`Lease` is handed out by the dispatcher, which lets as many leases hold a
backend at once as its worker decodes together (its slots). A :class:`Generation`
reads that request's events, demultiplexed from the worker's output by
:class:`~aria.backends.channel.WorkerChannel`; if the consumer stops early,
:meth:`Generation.aclose` sends ``cancel`` and waits for the worker's ``done``
(shielded from the caller's cancellation), so the slot is free when the lease ends. A
worker that does not stop in time is killed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import anyio

from aria.backends.channel import WorkerChannel
from aria.backends.engine import Embeddings
from aria.backends.protocol import FinishReason, GenerationJob, WorkerInfo, error_from_wire
from aria.catalog.entries import ModelId
from aria.errors import AriaError, BackendCrashed

if TYPE_CHECKING:
    from aria.backends.process import WorkerProcess

__all__ = ["DoneEvent", "Generation", "GenerationStream", "Lease", "TokenEvent", "ToolCallDelta"]

_DRAIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens the worker reused from its cache


@dataclass(frozen=True)
class ToolCallDelta:
    """A tool call another node's API already parsed, in OpenAI's streaming shape: the
    first fragment of call ``index`` names it (``id``, ``name``), later ones continue its
    ``arguments``. Local backends stream text; only generations on peers produce these."""

    index: int
    id: str | None
    name: str | None
    arguments: str


class GenerationStream(Protocol):
    """What serving a request reads, whether it runs here or on a peer."""

    finished: bool

    async def next_event(self) -> TokenEvent | ToolCallDelta | DoneEvent: ...

    async def cancel(self) -> DoneEvent | None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Lease:
    """One slot of a ready backend; ``on_crash`` tells the dispatcher it died."""

    model_id: ModelId
    info: WorkerInfo
    channel: WorkerChannel
    next_id: Callable[[], int]
    on_crash: Callable[[str], Awaitable[None]]

    @property
    def process(self) -> WorkerProcess:
        return self.channel.process

    async def _guard(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except BackendCrashed as exc:
            await self.on_crash(exc.message)
            raise

    async def _raise_reported(self, message: dict[str, Any]) -> NoReturn:
        """Raise the error the worker reported; an engine crash the worker survived
        (e.g. its bitnet.cpp server died) retires the backend like a dead worker."""
        error = error_from_wire(message)
        if isinstance(error, BackendCrashed):
            await self.on_crash(error.message)
        raise error

    async def generate(self, job: GenerationJob) -> Generation:
        """Send ``job``; read its events from the returned :class:`Generation`.

        Raises:
            BackendCrashed: the worker is gone.
        """
        request_id = self.next_id()
        self.channel.open(request_id)
        try:
            await self._guard(
                self.process.send({"op": "generate", "id": request_id, "job": job.to_wire()})
            )
        except BaseException:
            self.channel.close(request_id)
            raise
        return Generation(self, request_id)

    async def embed(self, texts: list[str]) -> Embeddings:
        """Embed ``texts``; if the caller is cancelled first, the worker is told to stop
        (between two chunks) and drained before the lease is released.

        Raises: BackendCrashed, ContextLengthExceeded, InvalidRequest, RequestFailed.
        """
        request_id = self.next_id()
        self.channel.open(request_id)
        try:
            await self._guard(self.process.send({"op": "embed", "id": request_id, "input": texts}))
            try:
                message = await self._reply(request_id)
            except BackendCrashed:
                raise  # the dispatcher already retired it
            except BaseException:  # the caller was cancelled (its client left)
                await self._stop(request_id)
                raise
        finally:
            self.channel.close(request_id)
        if message.get("ev") == "error":
            await self._raise_reported(message)
        if message.get("ev") != "emb":
            raise BackendCrashed(f"the backend answered an embedding with {message.get('ev')!r}")
        return Embeddings(vectors=message["data"], prompt_tokens=int(message["prompt_tokens"]))

    async def _reply(self, request_id: int) -> dict[str, Any]:
        message: dict[str, Any] = await self._guard(self.channel.receive(request_id))
        return message

    async def _stop(self, request_id: int) -> None:
        """Cancel a request whose caller left, and wait for the worker to be free."""
        with anyio.CancelScope(shield=True):
            try:
                await self._guard(self.process.send({"op": "cancel", "id": request_id}))
                with anyio.fail_after(_DRAIN_TIMEOUT_S):
                    await self._reply(request_id)
            except AriaError:
                pass  # crashed: the dispatcher already knows
            except TimeoutError:
                await self.on_crash("the backend did not stop after a cancel")


class Generation:
    """The events of one generation request, in order, as the worker produces them."""

    def __init__(self, lease: Lease, request_id: int) -> None:
        self._lease = lease
        self._id = request_id
        self._done: DoneEvent | None = None
        self._stash: dict[str, Any] | None = None
        self.finished = False

    async def next_event(self) -> TokenEvent | DoneEvent:
        """The next token(s) (or the final summary).

        Tokens that arrived while the caller was busy come back as one event (their
        texts joined), so a slow consumer catches up instead of falling further behind.

        Raises:
            BackendCrashed: the worker died; ContextLengthExceeded, InvalidRequest:
            the worker refused the job before generating.
        """
        message = self._stash or await self._read()
        self._stash = None
        if message.get("ev") != "tok":
            return await self._final(message)
        text = message["text"]
        while (more := self._lease.channel.ready(self._id)) is not None:
            if more.get("ev") != "tok":
                self._stash = more
                break
            text += more["text"]
        return TokenEvent(text)

    async def _read(self) -> dict[str, Any]:
        try:
            return await self._lease._reply(self._id)
        except AriaError:
            self._finish()
            raise

    def _finish(self) -> None:
        self.finished = True
        self._lease.channel.close(self._id)

    async def _final(self, message: dict[str, Any]) -> DoneEvent:
        self._finish()
        if message.get("ev") == "done":
            self._done = DoneEvent(
                finish_reason=message["finish_reason"],
                prompt_tokens=int(message["prompt_tokens"]),
                completion_tokens=int(message["completion_tokens"]),
                cached_tokens=int(message.get("cached_tokens", 0)),
            )
            return self._done
        await self._lease._raise_reported(message)

    async def cancel(self) -> DoneEvent | None:
        """Stop generating if still running and wait until the worker is free.

        Returns the worker's final summary (``None`` if it failed instead).
        """
        if self.finished:
            return self._done
        with anyio.CancelScope(shield=True):
            try:
                await self._lease._guard(self._lease.process.send({"op": "cancel", "id": self._id}))
                with anyio.fail_after(_DRAIN_TIMEOUT_S):
                    while not self.finished:
                        await self.next_event()
            except AriaError:
                pass  # crashed or refused: either way the request is over
            except TimeoutError:
                await self._lease.on_crash("the backend did not stop after a cancel")
            self._finish()
        return self._done

    async def aclose(self) -> None:
        await self.cancel()
