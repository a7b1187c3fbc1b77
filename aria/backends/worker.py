"""A backend worker process: ``python -m aria.backends.worker '<WorkerLaunch JSON>'``.

It loads one model and serves the line protocol of :mod:`aria.backends.protocol` on
its stdin/stdout. The main thread runs the engine's steps: new requests join between
two steps and every running request advances by one token per step (continuous
batching, :mod:`aria.backends.llama_engine`); a reader thread receives commands while a
step runs, and an embedding thread serves embedding requests one after another beside
the generations (stopped between two chunks by a ``cancel``). The protocol owns file
descriptor 1: native code that prints to stdout is redirected to stderr (the dispatcher
sends stderr to a log file). The worker exits when stdin closes.

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
from collections.abc import Iterable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from aria.backends.engine import EmbeddingCancelled, Ended, Engine, Failure, Piece, StepEvent
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
    """Unbuffered protocol output, shared by the step loop and the embedding thread: one
    ``write`` per batch of messages, as soon as they exist."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self._write(encode(message))

    def events(self, events: Iterable[StepEvent]) -> None:
        """One step's events, written together (one system call for every stream)."""
        lines = [_event_line(event) for event in events]
        if lines:
            self._write(b"".join(lines))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        with self._lock:
            while view:
                view = view[os.write(self._fd, view) :]


def _event_line(event: StepEvent) -> bytes:
    match event:
        case Piece(request_id=request_id, text=text):
            # The hot path: skip building a dict per token.
            return b'{"id":%d,"ev":"tok","text":%s}\n' % (request_id, json.dumps(text).encode())
        case Ended(request_id=request_id, result=result):
            return encode({"id": request_id, "ev": "done", **asdict(result)})
        case Failure(request_id=request_id, error=error):
            return encode(error_to_wire(request_id, _as_request_error(error)))


def _as_request_error(exc: BaseException) -> AriaError:
    """ARIA errors as they are (``BackendCrashed`` among them: the engine says it is gone);
    anything else is this request's unexpected failure, the engine is still there."""
    if isinstance(exc, AriaError):
        return exc
    traceback.print_exception(exc)
    detail = f"{type(exc).__name__}: {exc}"[:200]
    return RequestFailed(f"the backend could not run this request ({detail})")


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
        from aria.backends.sequential import SequentialEngine

        return SequentialEngine(FakeEngine(launch))
    if launch.engine == "bitnet-server":
        from aria.backends.bitnet_engine import BitnetServerEngine
        from aria.backends.sequential import SequentialEngine

        return SequentialEngine(BitnetServerEngine(launch))
    if launch.rpc_servers:  # before llama_cpp loads ggml: split inference setup
        from aria.rpc.ggml_rpc import prepare_orchestrator

        prepare_orchestrator(launch.rpc_servers)
    from aria.backends.llama_engine import LlamaEngine

    return LlamaEngine(launch)


# Commands in arrival order; None once stdin is closed.
_Inbox = queue.SimpleQueue[dict[str, Any] | None]


class _Commands:
    """What the reader thread hands the others: step-loop messages in order, and the
    cancels of embedding requests (which run on their own thread)."""

    def __init__(self) -> None:
        self.inbox: _Inbox = queue.SimpleQueue()
        self.embeddings: _Inbox = queue.SimpleQueue()
        self.embedding_ids: set[int] = set()
        self.cancelled: set[int] = set()

    def forget(self, request_id: int) -> None:
        self.embedding_ids.discard(request_id)
        self.cancelled.discard(request_id)

    def is_cancelled(self, request_id: int) -> bool:
        return request_id in self.cancelled

    def read(self, stream: BinaryIO) -> None:
        try:
            for line in stream:
                message = decode(line)
                request_id = message.get("id")
                if message.get("op") == "embed" and isinstance(request_id, int):
                    self.embedding_ids.add(request_id)
                    self.inbox.put(message)
                elif message.get("op") == "cancel" and request_id in self.embedding_ids:
                    self.cancelled.add(int(request_id))
                else:
                    self.inbox.put(message)
        except (AriaError, OSError, ValueError) as exc:
            print(f"worker: stopped reading commands: {exc}", file=sys.stderr)
        finally:
            self.inbox.put(None)
            self.embeddings.put(None)


def _job(message: dict[str, Any]) -> GenerationJob:
    try:
        return GenerationJob.from_wire(message["job"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest(f"the backend received a malformed job ({exc})") from None


def _handle(engine: Engine, message: dict[str, Any], commands: _Commands, writer: _Writer) -> None:
    """One command for the step loop; a request refused here never joins a step."""
    request_id = int(message.get("id", 0))
    op = message.get("op")
    try:
        if op == "ping":
            writer.send({"id": request_id, "ev": "pong"})
        elif op == "generate":
            engine.submit(request_id, _job(message))
        elif op == "cancel":
            engine.cancel(request_id)
        elif op == "embed":
            # Loaded here, not on the embedding thread: a thread's allocator fails harder
            # under the address-space cap (llama.cpp aborts instead of returning NULL).
            engine.prepare_embeddings()
            commands.embeddings.put(message)
        else:
            raise InvalidRequest(f"unknown worker operation {op!r}")
    except BrokenPipeError:
        raise
    except Exception as exc:
        commands.forget(request_id)
        writer.send(error_to_wire(request_id, _as_request_error(exc)))


def _run_steps(engine: Engine, commands: _Commands, writer: _Writer) -> None:
    """Take every command that arrived, run one step, repeat; wait only when idle."""
    inbox = commands.inbox
    while True:
        try:
            message = inbox.get(block=not engine.has_work())
            while message is not None:
                _handle(engine, message, commands, writer)
                message = inbox.get_nowait()
            return  # stdin closed
        except queue.Empty:
            pass
        if engine.has_work():
            writer.events(engine.step())


def _serve_embeddings(engine: Engine, commands: _Commands, writer: _Writer) -> None:
    while (message := commands.embeddings.get()) is not None:
        request_id = int(message.get("id", 0))
        try:
            texts = message.get("input")
            if not isinstance(texts, list):
                raise InvalidRequest("the backend received a malformed embedding request")
            stopped = partial(commands.is_cancelled, request_id)
            result = engine.embed([str(text) for text in texts], stopped)
            vectors, tokens = result.vectors, result.prompt_tokens
            writer.send({"id": request_id, "ev": "emb", "data": vectors, "prompt_tokens": tokens})
        except EmbeddingCancelled:
            writer.send({"id": request_id, "ev": "cancelled"})
        except OSError:
            return  # the node went away
        except Exception as exc:
            writer.send(error_to_wire(request_id, _as_request_error(exc)))
        finally:
            commands.forget(request_id)


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
    commands = _Commands()
    threading.Thread(target=commands.read, args=(sys.stdin.buffer,), daemon=True).start()
    if launch.address_space_headroom_bytes is not None:
        limit = limit_address_space(launch.address_space_headroom_bytes, Path(launch.model_path))
        if limit is not None:
            print(f"worker: address space limited to {limit / 2**30:.2f} GiB", file=sys.stderr)
    # Started under the cap: what its allocator reserves for it counts against it.
    threading.Thread(target=_serve_embeddings, args=(engine, commands, writer), daemon=True).start()
    writer.send({"id": 0, "ev": "ready", "info": asdict(engine.info)})
    try:
        _run_steps(engine, commands, writer)
    except BrokenPipeError:
        return 0  # the node went away; nobody is listening
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
