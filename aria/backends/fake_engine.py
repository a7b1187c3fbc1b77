"""A deterministic engine with no model inside: what dispatcher and API tests run on.

Selected with ``WorkerLaunch(engine="fake")`` (``Node(engine="fake")`` for every launch),
it implements :class:`~aria.backends.engine.TextEngine` in plain Python (the worker serves
it through :class:`~aria.backends.sequential.SequentialEngine`), so a worker starts in
the time Python takes to import it and the tests that exercise the dispatcher, the API,
the placement decision or the network run on a machine without the compiled llama.cpp.
It is no stand-in for a model's quality: it answers with words drawn from a small list,
seeded by the request (``seed``, else the prompt), one per token; a prompt is counted as
one token per four bytes of its rendering. What it keeps faithfully is the contract:
``max_tokens``, ``stop`` sequences, cancellation between two tokens, the context window
(``ContextLengthExceeded`` before generating), tool calls and JSON in ARIA's formats when
a grammar asks for them, usage, and normalized embeddings. The real engines' tests stay.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from aria.backends.engine import EmbeddingCancelled, Embeddings, Finished
from aria.backends.launch import WorkerLaunch
from aria.backends.protocol import GenerationJob, GrammarSpec, WorkerInfo
from aria.backends.toolcalls import CALL_CLOSE, CALL_OPEN
from aria.errors import BackendUnavailable, ContextLengthExceeded

__all__ = ["FakeEngine"]

_WORDS = [
    "the",
    "river",
    "carries",
    "light",
    "over",
    "stones",
    "while",
    "a",
    "quiet",
    "town",
    "counts",
    "the",
    "hours",
    "of",
    "rain",
    "and",
    "every",
    "window",
    "keeps",
    "a",
    "small",
    "lamp",
    "for",
    "travellers",
    "who",
    "walk",
    "the",
    "long",
    "road",
    "home",
]
_EMBEDDING_SIZE = 16
_BYTES_PER_TOKEN = 4


class FakeEngine:
    """Words from a seeded list, one per token, under the real engines' rules."""

    def __init__(self, launch: WorkerLaunch) -> None:
        if not Path(launch.model_path).is_file():
            raise BackendUnavailable(f"could not load {launch.model_path}: no such file")
        self.info = WorkerInfo(
            engine="fake",
            n_ctx=launch.n_ctx,
            n_vocab=len(_WORDS),
            n_embd=_EMBEDDING_SIZE,
            chat_template=True,
            pid=os.getpid(),
        )

    def generate(
        self, job: GenerationJob, cancelled: Callable[[], bool]
    ) -> Generator[str, None, Finished]:
        """Stream one word per token (or the grammar's text); see the module docstring.

        Raises:
            ContextLengthExceeded: the prompt plus ``max_tokens`` does not fit the window.
        """
        prompt = _render(job)
        prompt_tokens = _tokens(prompt)
        room = self.info.n_ctx - prompt_tokens
        if room <= 0 or (job.max_tokens is not None and job.max_tokens > room):
            raise ContextLengthExceeded(
                f"the prompt is {prompt_tokens} tokens and {job.max_tokens or 1} more were "
                f"asked for, but the context window is {self.info.n_ctx}",
                param="messages" if job.messages is not None else "prompt",
            )
        limit = job.max_tokens if job.max_tokens is not None else room
        text = ""
        for count, piece in enumerate(_pieces(job, prompt), start=1):
            if cancelled():
                return Finished("cancelled", prompt_tokens, count - 1)
            text += piece
            stop = _first_stop(text, job.stop)
            if stop is not None:
                kept = stop - (len(text) - len(piece))
                if kept > 0:
                    yield piece[:kept]
                return Finished("stop", prompt_tokens, count)
            yield piece
            if count >= limit:
                return Finished("length", prompt_tokens, count)
        return Finished("stop", prompt_tokens, limit)

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        """One unit vector per text, from its hash (equal texts, equal vectors).

        Raises:
            EmbeddingCancelled: ``cancelled()`` became true between two texts.
        """
        vectors = []
        for text in texts:
            if cancelled():
                raise EmbeddingCancelled
            digest = hashlib.sha256(text.encode()).digest()
            raw = [byte - 127.5 for byte in digest[:_EMBEDDING_SIZE]]
            norm = math.sqrt(sum(v * v for v in raw)) or 1.0
            vectors.append([v / norm for v in raw])
        return Embeddings(vectors, sum(_tokens(text) for text in texts))

    def close(self) -> None:
        return None


def _render(job: GenerationJob) -> str:
    if job.messages is None:
        return job.prompt or ""
    lines = [f"{m.get('role', '')}: {m.get('content') or ''}" for m in job.messages]
    if job.tools:
        lines.append(json.dumps(list(job.tools)))
    return "\n".join(lines)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode()) / _BYTES_PER_TOKEN))


def _pieces(job: GenerationJob, prompt: str) -> Generator[str, None, None]:
    """The answer, one token's text at a time."""
    if job.grammar is not None:
        shaped = _shaped(job.grammar)
        yield from (shaped[i : i + 4] for i in range(0, len(shaped), 4))
        return
    seed = (
        job.seed if job.seed is not None else int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    )
    rng = random.Random(seed)
    while True:
        yield " " + rng.choice(_WORDS)


def _shaped(grammar: GrammarSpec) -> str:
    """Text in the shape a grammar forces: a tool call, or a JSON value."""
    if grammar.kind == "tools":
        tools = [t.get("function", t) for t in grammar.tools]
        chosen = next(
            (t for t in tools if t.get("name") == grammar.name), tools[0] if tools else {}
        )
        call = {"name": chosen.get("name", ""), "arguments": _instance(chosen.get("parameters"))}
        return f"{CALL_OPEN}\n{json.dumps(call)}\n{CALL_CLOSE}"
    return json.dumps(_instance(grammar.schema if grammar.kind == "json_schema" else None))


def _instance(schema: Any) -> Any:
    """The simplest value a JSON Schema accepts (an empty object without one)."""
    if not isinstance(schema, dict):
        return {}
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {name: _instance(properties.get(name)) for name in required}
    if kind == "array":
        return [_instance(schema.get("items"))] * int(schema.get("minItems", 0))
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": True}.get(kind)


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the earliest stop sequence starts in ``text`` (None: none occurs)."""
    found = [index for stop in stops if (index := text.find(stop)) >= 0]
    return min(found) if found else None
