"""``POST /v1/chat/completions`` and ``POST /v1/completions``.

Both go through the node's one placement decision (:meth:`aria.node.Node.generate`):
the request runs here, on a peer or split over peers, and is rendered the same way
wherever it ran; the ``x-aria-route``, ``x-aria-served-by`` and ``x-aria-split`` headers
say where. A request may ask for another placement than the operator's
``node.placement`` with the ``x-aria-placement`` header (``local-first``,
``peers-first``, ``local-only``; peers only ever with ``use.prompts_may_leave``).

Everything up to the first byte of the response (waiting for a backend, the prompt,
and the whole generation when not streamed) runs under
:func:`~aria.api.disconnect.unless_disconnected`: a client that leaves stops its work.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.background import BackgroundTask

from aria.api.convert import chat_job, completion_job
from aria.api.disconnect import client_gone, unless_disconnected
from aria.api.memory import chat_memory, memory_field, memory_headers
from aria.api.metrics import Metrics, RequestTracker
from aria.api.payloads import DONE, ChatOutput, Chunks, finish_reason
from aria.api.provenance import provenance_of
from aria.api.schemas import ChatCompletionRequest, CompletionRequest
from aria.api.streaming import EventStream, Final, error_event, generated, route_headers
from aria.backends import GenerationJob, ToolCallDelta
from aria.errors import InvalidRequest
from aria.memory import preparer
from aria.node import Node, Prepare
from aria.router import PREFERENCES, Preference, parse_preference
from aria.served import Served

__all__ = ["ERROR_RESPONSES", "router"]

router = APIRouter(tags=["inference"])

ERROR_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "Invalid request (OpenAI error object)"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "A browser origin that is not allowed"},
    404: {"description": "Unknown or not-installed model"},
    408: {"description": "The request body did not arrive in time"},
    413: {"description": "Request body too large"},
    421: {"description": "A Host name this keyless API does not answer to"},
    422: {"description": "A field has the wrong type or range"},
    429: {"description": "The model's queue (or the key's quota) is full; see Retry-After"},
    503: {"description": "No backend could serve the request, or the server is busy"},
}


@router.post("/v1/chat/completions", responses=ERROR_RESPONSES)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """Chat with a model (its own chat template), streamed as SSE when ``stream`` is true.

    ARIA's fields: ``memory`` (use the caller's memory; docs/memory.md) and
    ``conversation_id``. The response says what memory did in ``x-aria-memory``,
    ``x-aria-reminders`` and, when not streamed, an ``aria`` field.
    """
    response = await unless_disconnected(request.receive, lambda: _chat(body, request))
    return client_gone() if response is None else response


async def _start(
    request: Request, job: GenerationJob, model: str | None, prepare: Prepare | None = None
) -> tuple[Served, dict[str, str], RequestTracker]:
    """Open ``job`` where the node's placement decision puts it; its headers and tracker.
    ``prepare`` (memory) applies only where the job runs here (:meth:`Node.generate`);
    the receipt says whom it was for (:func:`provenance_of`)."""
    node: Node = request.app.state.node
    metrics: Metrics = request.app.state.metrics
    started = time.perf_counter()
    served = await node.generate(
        job,
        model,
        placement=_placement(request),
        provenance=provenance_of(request),
        prepare=prepare,
    )
    tracker = RequestTracker(metrics, served.model_id, started)
    return served, route_headers(served, metrics), tracker


def _placement(request: Request) -> Preference | None:
    """The request's ``x-aria-placement``, if it asks for one.

    Raises:
        InvalidRequest: not one of the preferences.
    """
    value = request.headers.get("x-aria-placement")
    if value is None:
        return None
    preference = parse_preference(value)
    if preference is None:
        raise InvalidRequest(
            f"x-aria-placement must be one of {', '.join(PREFERENCES)}", param="x-aria-placement"
        )
    return preference


async def _chat(body: ChatCompletionRequest, request: Request) -> Response:
    node: Node = request.app.state.node
    job, tools = chat_job(body)
    memory = await chat_memory(request, body, job)
    prepare = preparer(memory.turn) if memory is not None else None
    served, headers, tracker = await _start(request, job, body.model, prepare)
    if memory is not None and served.served_by is not None:
        memory.turn.withhold()  # the peer got the conversation without any memory
    headers |= memory_headers(memory)
    metrics: Metrics = request.app.state.metrics
    chunks = Chunks("chat", served.model_id)
    output = ChatOutput(tools=tools)
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = _chat_stream(served, output, chunks, tracker, metrics, usage)

        async def close() -> None:
            await served.aclose()
            if memory is not None:
                await memory.answered("".join(output.content))
                await memory.extract(node, served)

        return EventStream(stream, headers=headers, on_close=close)
    async with served:
        done = None
        async with aclosing(_counted(served, tracker, lambda: output.repeating)) as items:
            async for item in items:
                if isinstance(item, Final):
                    done = item.done
                elif isinstance(item, ToolCallDelta):
                    output.call(item)
                else:
                    output.feed(item)
    output.finish()
    payload = chunks.response({"message": output.message()}, done, output.finish_reason(done))
    if memory is None:
        return JSONResponse(payload, headers=headers)
    await memory.answered("".join(output.content))
    payload["aria"] = memory_field(memory)
    after = BackgroundTask(memory.extract, node, served)
    return JSONResponse(payload, headers=headers, background=after)


async def _counted(
    served: Served, tracker: RequestTracker, stop: Callable[[], bool]
) -> AsyncGenerator[str | ToolCallDelta | Final, None]:
    """:func:`generated`, and when cancelled (the client left) the tokens made so far
    still count in the metrics."""
    try:
        async with aclosing(generated(served, tracker, stop)) as items:
            async for item in items:
                yield item
    except anyio.get_cancelled_exc_class():
        done = await served.cancel()  # shielded: stops the worker between tokens
        tracker.done(done, served.accounting.energy)
        raise


async def _chat_stream(
    served: Served,
    output: ChatOutput,
    chunks: Chunks,
    tracker: RequestTracker,
    metrics: Metrics,
    usage: bool,
) -> AsyncGenerator[bytes, None]:
    try:
        yield chunks.delta({"role": "assistant", "content": ""})
        done = None
        async with aclosing(generated(served, tracker, lambda: output.repeating)) as items:
            async for item in items:
                if isinstance(item, Final):
                    done = item.done
                    continue
                deltas = output.call(item) if isinstance(item, ToolCallDelta) else output.feed(item)
                for delta in deltas:
                    yield chunks.delta(delta)
        for delta in output.finish():
            yield chunks.delta(delta)
        yield chunks.delta({}, finish_reason=output.finish_reason(done))
        if usage:
            yield chunks.usage(done)
        yield DONE
    except Exception as exc:
        yield error_event(exc, metrics)


@router.post("/v1/completions", responses=ERROR_RESPONSES)
async def completions(body: CompletionRequest, request: Request) -> Response:
    """Continue a raw prompt (no chat template)."""
    response = await unless_disconnected(request.receive, lambda: _complete(body, request))
    return client_gone() if response is None else response


async def _complete(body: CompletionRequest, request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    served, headers, tracker = await _start(request, completion_job(body), body.model)
    chunks = Chunks("text", served.model_id)
    prefix = body.prompt_text() if body.echo else ""
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = _text_stream(served, chunks, tracker, metrics, usage, prefix)
        return EventStream(stream, headers=headers, on_close=served.aclose)
    async with served:
        parts, done = [prefix], None
        async with aclosing(_counted(served, tracker, lambda: False)) as items:
            async for item in items:
                if isinstance(item, Final):
                    done = item.done
                elif isinstance(item, str):
                    parts.append(item)
    return JSONResponse(
        chunks.response({"text": "".join(parts)}, done, finish_reason(done)), headers=headers
    )


async def _text_stream(
    served: Served,
    chunks: Chunks,
    tracker: RequestTracker,
    metrics: Metrics,
    usage: bool,
    prefix: str,
) -> AsyncGenerator[bytes, None]:
    try:
        if prefix:
            yield chunks.content(prefix)
        done = None
        async with aclosing(generated(served, tracker, lambda: False)) as items:
            async for item in items:
                if isinstance(item, Final):
                    done = item.done
                elif isinstance(item, str):
                    yield chunks.content(item)
        yield chunks.delta({}, finish_reason=finish_reason(done))
        if usage:
            yield chunks.usage(done)
        yield DONE
    except Exception as exc:
        yield error_event(exc, metrics)
