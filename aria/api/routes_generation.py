"""``POST /v1/chat/completions`` and ``POST /v1/completions``.

Everything up to the first byte of the response (waiting for a backend, the prompt,
and the whole generation when not streamed) runs under
:func:`~aria.api.disconnect.unless_disconnected`: a client that leaves stops its work.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.background import BackgroundTask

from aria.api.convert import chat_job, completion_job
from aria.api.disconnect import client_gone, unless_disconnected
from aria.api.memory import chat_memory, memory_field, memory_headers
from aria.api.metrics import Metrics, RequestTracker
from aria.api.payloads import DONE, ChatOutput, Chunks, finish_reason
from aria.api.peers import serve_on_peer
from aria.api.provenance import provenance_of
from aria.api.schemas import ChatCompletionRequest, CompletionRequest
from aria.api.streaming import EventStream, Final, error_event, generated, route_headers
from aria.memory import preparer
from aria.node import Node, Served

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


async def _chat(body: ChatCompletionRequest, request: Request) -> Response:
    remote = await serve_on_peer(request, body)
    if remote is not None:
        return remote
    node: Node = request.app.state.node
    metrics: Metrics = request.app.state.metrics
    job, tools = chat_job(body)
    provenance = provenance_of(request)
    started = time.perf_counter()
    memory = await chat_memory(request, body, job)
    prepare = preparer(memory.turn) if memory is not None else None
    served = await node.generate(job, body.model, provenance=provenance, prepare=prepare)
    headers = route_headers(served, metrics) | memory_headers(memory)
    chunks = Chunks("chat", served.model_id)
    output = ChatOutput(tools=tools)
    tracker = RequestTracker(metrics, served.model_id, started)
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
        async for item in _counted(served, tracker, lambda: output.repeating):
            if isinstance(item, Final):
                done = item.done
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
) -> AsyncIterator[str | Final]:
    """:func:`generated`, and when cancelled (the client left) the tokens made so far
    still count in the metrics."""
    try:
        async for item in generated(served, tracker, stop):
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
) -> AsyncIterator[bytes]:
    try:
        yield chunks.delta({"role": "assistant", "content": ""})
        done = None
        async for item in generated(served, tracker, lambda: output.repeating):
            if isinstance(item, Final):
                done = item.done
                continue
            for delta in output.feed(item):
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
    node: Node = request.app.state.node
    metrics: Metrics = request.app.state.metrics
    job = completion_job(body)
    provenance = provenance_of(request)
    started = time.perf_counter()
    served = await node.generate(job, body.model, provenance=provenance)
    headers = route_headers(served, metrics)
    chunks = Chunks("text", served.model_id)
    tracker = RequestTracker(metrics, served.model_id, started)
    prefix = body.prompt_text() if body.echo else ""
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = _text_stream(served, chunks, tracker, metrics, usage, prefix)
        return EventStream(stream, headers=headers, on_close=served.aclose)
    async with served:
        parts, done = [prefix], None
        async for item in _counted(served, tracker, lambda: False):
            if isinstance(item, Final):
                done = item.done
            else:
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
) -> AsyncIterator[bytes]:
    try:
        if prefix:
            yield chunks.content(prefix)
        done = None
        async for item in generated(served, tracker, lambda: False):
            if isinstance(item, Final):
                done = item.done
            else:
                yield chunks.content(item)
        yield chunks.delta({}, finish_reason=finish_reason(done))
        if usage:
            yield chunks.usage(done)
        yield DONE
    except Exception as exc:
        yield error_event(exc, metrics)
