"""The wire protocol between the node and a backend worker process (pure, no I/O).

One JSON object per line in each direction over the worker's stdin/stdout.

Node -> worker (``op``)::

    {"op": "ping", "id": n}
    {"op": "generate", "id": n, "job": {...GenerationJob...}}   several may run at once
    {"op": "embed", "id": n, "input": ["text", ...]}
    {"op": "cancel", "id": n}                 stop request n (generation: between two
                                              tokens; embeddings: between two chunks)

Worker -> node (``ev``)::

    {"id": 0, "ev": "loading"}                right after start
    {"id": 0, "ev": "ready", "info": {...}}   model loaded (WorkerInfo)
    {"id": n, "ev": "pong"}
    {"id": n, "ev": "tok", "text": "..."}     one token (or a few) as generated
    {"id": n, "ev": "done", "finish_reason": "stop", "prompt_tokens": p,
     "completion_tokens": c, "cached_tokens": k}   k of the p prompt tokens were reused
    {"id": n, "ev": "emb", "data": [[...]], "prompt_tokens": p}
    {"id": n, "ev": "cancelled"}              an embedding request stopped by ``cancel``
    {"id": n, "ev": "error", "code": "context_length_exceeded", "message": "...",
     "param": "max_tokens", "type": "invalid_request_error", "status": 400}
                                              (``AriaError.to_wire``)

An ``error`` is that request's: ``backend_crashed`` alone means the engine is gone (the
node retires the backend); ``request_failed`` is an unexpected failure of one request.

Token messages are the hot path, so events are plain dicts (``json`` is several
times faster than a model class per token); the request side uses dataclasses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aria.errors import AriaError, BackendCrashed, from_wire

__all__ = [
    "FinishReason",
    "GenerationJob",
    "GrammarSpec",
    "WorkerInfo",
    "decode",
    "encode",
    "error_from_wire",
    "error_to_wire",
]

FinishReason = Literal["stop", "length", "cancelled"]


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line (``ensure_ascii`` keeps every line pure ASCII)."""
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line; a line that is not a JSON object is a protocol violation.

    Raises:
        BackendCrashed: the peer wrote something that is not a protocol message.
    """
    try:
        message = json.loads(line)
    except ValueError:
        raise BackendCrashed(f"backend wrote a malformed message: {line[:120]!r}") from None
    if not isinstance(message, dict):
        raise BackendCrashed(f"backend wrote a malformed message: {line[:120]!r}")
    return message


def error_to_wire(request_id: int, exc: AriaError) -> dict[str, Any]:
    """Request ``request_id``'s error event (the error in its wire form)."""
    return {"id": request_id, "ev": "error", **exc.to_wire()}


def error_from_wire(message: dict[str, Any]) -> AriaError:
    """Rebuild the typed error a worker reported (an unknown code: the backend failed)."""
    return from_wire(message, fallback=BackendCrashed)


@dataclass(frozen=True)
class GrammarSpec:
    """What the output must look like; the worker compiles it to a GBNF grammar.

    ``kind``: ``json_object`` (any JSON object), ``json_schema`` (``schema``),
    ``tools`` (tool calls for ``tools``; ``mode`` ``auto`` also allows free text,
    ``required`` forces a call, ``named`` forces a call to ``name``; ``single``
    allows one call instead of several, for ``parallel_tool_calls=false``).
    """

    kind: Literal["json_object", "json_schema", "tools"]
    schema: dict[str, Any] | None = None
    tools: tuple[dict[str, Any], ...] = ()
    mode: Literal["auto", "required", "named"] = "auto"
    name: str | None = None
    single: bool = False


@dataclass(frozen=True)
class GenerationJob:
    """One generation request, independent of the API that asked for it.

    Exactly one of ``messages`` (rendered with the model's chat template) and
    ``prompt`` (raw completion) is set. ``max_tokens`` None means "until the
    context window is full". ``isolated`` asks for a batch-invariant decode: the
    request is decoded on its own (its own llama.cpp context and calls, no reused prompt
    prefix), so its greedy text is the same as a solo run's whatever else the backend is
    doing; work served for a peer is, so that the peer's spot checks can reproduce it.
    """

    messages: tuple[dict[str, Any], ...] | None = None
    prompt: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: GrammarSpec | None = None
    isolated: bool = False

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a GenerationJob needs exactly one of messages and prompt")

    def to_wire(self) -> dict[str, Any]:
        data = asdict(self)
        data["logit_bias"] = {str(k): v for k, v in self.logit_bias.items()}
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> GenerationJob:
        grammar = data.get("grammar")
        messages = data.get("messages")
        return cls(
            messages=tuple(messages) if messages is not None else None,
            prompt=data.get("prompt"),
            tools=tuple(data.get("tools") or ()),
            max_tokens=data.get("max_tokens"),
            temperature=float(data.get("temperature", 1.0)),
            top_p=float(data.get("top_p", 1.0)),
            stop=tuple(data.get("stop") or ()),
            seed=data.get("seed"),
            presence_penalty=float(data.get("presence_penalty", 0.0)),
            frequency_penalty=float(data.get("frequency_penalty", 0.0)),
            logit_bias={int(k): float(v) for k, v in (data.get("logit_bias") or {}).items()},
            grammar=None
            if grammar is None
            else GrammarSpec(
                kind=grammar["kind"],
                schema=grammar.get("schema"),
                tools=tuple(grammar.get("tools") or ()),
                mode=grammar.get("mode", "auto"),
                name=grammar.get("name"),
                single=bool(grammar.get("single", False)),
            ),
            isolated=bool(data.get("isolated", False)),
        )


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker reports once its model is loaded.

    ``n_ctx`` is the context window of each request; ``slots`` requests are decoded
    together, their K/V cache taking ``kv_bytes``.
    """

    engine: str
    n_ctx: int
    n_vocab: int
    n_embd: int
    chat_template: bool
    pid: int
    slots: int = 1
    kv_bytes: int = 0

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkerInfo:
        return cls(
            engine=str(data["engine"]),
            n_ctx=int(data["n_ctx"]),
            n_vocab=int(data["n_vocab"]),
            n_embd=int(data["n_embd"]),
            chat_template=bool(data["chat_template"]),
            pid=int(data["pid"]),
            slots=int(data.get("slots", 1)),
            kv_bytes=int(data.get("kv_bytes", 0)),
        )
