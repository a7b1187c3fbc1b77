"""A backend worker process: ``python -m aria.backends.worker '<WorkerLaunch JSON>'``.

It loads one model and serves the line protocol of :mod:`aria.backends.protocol` on
its stdin/stdout, one job at a time. A reader thread receives commands while a job
runs, so a ``cancel`` stops generation between two tokens (and an embedding batch
between two chunks). The protocol owns file descriptor 1: native code that prints to
stdout is redirected to stderr (the dispatcher sends stderr to a log file). The worker
exits when stdin closes.

A failure while serving one request is that request's error, never the worker's end:
ARIA errors travel as they are, anything else (a parser's ``RecursionError``, a
``MemoryError``...) as ``RequestFailed``; only ``BackendCrashed`` (the engine itself is
gone) makes the node retire the backend. Once the model is loaded the worker caps its
own address space (:mod:`aria.backends.memory_limit`), so an allocation that slipped
past every bound fails one request instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from aria.backends.engine import EmbeddingCancelled, Engine
from aria.backends.launch import WorkerLaunch
from aria.backends.memory_limit import limit_address_space
from aria.backends.protocol import (
    GenerationJob,
    decode,
    encode,
    error_to_wire,
)
from aria.errors import AriaError, BackendUnavailable, InvalidRequest, RequestFailed

__all__ = ["main", "open_engine"]


class _Writer:
    """Unbuffered protocol output: one ``write`` per message, as soon as it exists."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, message: dict[str, Any]) -> None:
        self._write(encode(message))

    def token(self, request_id: int, text: str) -> None:
        # The hot path: skip building a dict per token.
        self._write(b'{"id":%d,"ev":"tok","text":%s}\n' % (request_id, json.dumps(text).encode()))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]


def _claim_stdout() -> int:
    """Keep the real stdout for the protocol; point fd 1 (and ``sys.stdout``) at stderr."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


def open_engine(launch: WorkerLaunch) -> Engine:
    """Load the model with the engine ``launch`` asks for."""
    if launch.engine == "fake":
        from aria.backends.fake_engine import FakeEngine

        return FakeEngine(launch)
    if launch.engine == "bitnet-server":
        from aria.backends.bitnet_engine import BitnetServerEngine

        return BitnetServerEngine(launch)
    from aria.backends.llama_engine import LlamaEngine

    return LlamaEngine(launch)


def _read_commands(
    stream: BinaryIO, inbox: queue.SimpleQueue[dict[str, Any] | None], cancelled: set[int]
) -> None:
    try:
        for line in stream:
            message = decode(line)
            if message.get("op") == "cancel":
                cancelled.add(int(message.get("id", 0)))
            else:
                inbox.put(message)
    except (AriaError, OSError, ValueError) as exc:
        print(f"worker: stopped reading commands: {exc}", file=sys.stderr)
    finally:
        inbox.put(None)


def _generate(
    engine: Engine, request_id: int, job: GenerationJob, writer: _Writer, cancelled: set[int]
) -> None:
    pieces = engine.generate(job, lambda: request_id in cancelled)
    while True:
        try:
            piece = next(pieces)
        except StopIteration as stop:
            result = stop.value
            break
        writer.token(request_id, piece)
    writer.send({"id": request_id, "ev": "done", **asdict(result)})


def _job(message: dict[str, Any]) -> GenerationJob:
    try:
        return GenerationJob.from_wire(message["job"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest(f"the backend received a malformed job ({exc})") from None


def _embed(
    engine: Engine, request_id: int, message: dict[str, Any], writer: _Writer, cancelled: set[int]
) -> None:
    texts = message.get("input")
    if not isinstance(texts, list):
        raise InvalidRequest("the backend received a malformed embedding request")
    try:
        result = engine.embed([str(text) for text in texts], lambda: request_id in cancelled)
    except EmbeddingCancelled:
        writer.send({"id": request_id, "ev": "cancelled"})
        return
    vectors, tokens = result.vectors, result.prompt_tokens
    writer.send({"id": request_id, "ev": "emb", "data": vectors, "prompt_tokens": tokens})


def _serve(engine: Engine, message: dict[str, Any], writer: _Writer, cancelled: set[int]) -> None:
    request_id = int(message.get("id", 0))
    op = message.get("op")
    try:
        if op == "ping":
            writer.send({"id": request_id, "ev": "pong"})
        elif op == "generate":
            _generate(engine, request_id, _job(message), writer, cancelled)
        elif op == "embed":
            _embed(engine, request_id, message, writer, cancelled)
        else:
            raise InvalidRequest(f"unknown worker operation {op!r}")
    except AriaError as exc:  # BackendCrashed among them: the engine says it is gone
        writer.send(error_to_wire(request_id, exc))
    except BrokenPipeError:
        raise
    except Exception as exc:  # this request's failure; the engine is still there
        traceback.print_exc()
        detail = f"{type(exc).__name__}: {exc}"[:200]
        error = RequestFailed(f"the backend could not run this request ({detail})")
        writer.send(error_to_wire(request_id, error))
    finally:
        cancelled.discard(request_id)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    launch = WorkerLaunch.from_json(args[0])
    writer = _Writer(_claim_stdout())
    writer.send({"id": 0, "ev": "loading"})
    try:
        engine = open_engine(launch)
    except Exception as exc:
        traceback.print_exc()
        error = (
            exc
            if isinstance(exc, AriaError)
            else BackendUnavailable(f"could not load {launch.model_path}: {exc}")
        )
        writer.send(error_to_wire(0, error))
        return 1
    inbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
    cancelled: set[int] = set()
    threading.Thread(
        target=_read_commands, args=(sys.stdin.buffer, inbox, cancelled), daemon=True
    ).start()
    if launch.address_space_headroom_bytes is not None:
        limit = limit_address_space(launch.address_space_headroom_bytes, Path(launch.model_path))
        if limit is not None:
            print(f"worker: address space limited to {limit / 2**30:.2f} GiB", file=sys.stderr)
    writer.send({"id": 0, "ev": "ready", "info": asdict(engine.info)})
    try:
        while (message := inbox.get()) is not None:
            _serve(engine, message, writer, cancelled)
    except BrokenPipeError:
        return 0  # the node went away; nobody is listening
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
