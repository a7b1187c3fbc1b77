"""Proof of useful work, the pure part: which answers to check, and whether they match.

A node that used a peer keeps a sample of the peer's *greedy* answers (temperature 0:
the only ones another machine can reproduce exactly) and later re-executes each
request here, on the same model file, through the same code path. llama.cpp's greedy
decoding is deterministic for a given build — across runs, thread counts and batch
sizes, and with the same schedule (prompt in one batch, then one token at a time) — so an
honest peer's answer and the re-execution are identical, and any difference is
evidence. The comparison is on the answer as the client receives it: the text, the tool
calls (name and arguments; their random ids excluded) and the finish reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aria.ledger.entries import sha256_hex

__all__ = ["Answer", "Comparison", "answer_from_chunks", "checkable", "compare", "sampled"]


@dataclass(frozen=True)
class Answer:
    """What a chat request produced, as compared."""

    content: str
    tool_calls: tuple[tuple[str, str], ...] = ()
    finish_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tool_calls": [list(call) for call in self.tool_calls],
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        return cls(
            content=str(data.get("content", "")),
            tool_calls=tuple((str(n), str(a)) for n, a in data.get("tool_calls", [])),
            finish_reason=data.get("finish_reason"),
        )

    @property
    def sha256(self) -> str:
        return sha256_hex(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")))


def answer_from_chunks(chunks: Iterable[str]) -> Answer:
    """Rebuild the answer from a chat or text completion's SSE ``data`` payloads (or the
    single JSON body of a non-streamed response). Payloads that are not JSON objects are
    skipped."""
    content: list[str] = []
    calls: dict[int, list[str]] = {}
    finish: str | None = None
    for data in chunks:
        try:
            payload = json.loads(data)
        except ValueError:
            continue  # [DONE]
        if not isinstance(payload, dict):
            continue
        for choice in payload.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if isinstance(choice.get("text"), str):  # a text completion (``prompt``)
                content.append(choice["text"])
            part = choice.get("delta") or choice.get("message") or {}
            if isinstance(part.get("content"), str):
                content.append(part["content"])
            for call in part.get("tool_calls") or []:
                function = call.get("function") or {}
                slot = calls.setdefault(int(call.get("index", len(calls))), ["", ""])
                slot[0] += str(function.get("name") or "")
                slot[1] += str(function.get("arguments") or "")
            finish = choice.get("finish_reason") or finish
    ordered = tuple((name, args) for _, (name, args) in sorted(calls.items()))
    return Answer("".join(content), ordered, finish)


def checkable(body: Mapping[str, Any]) -> bool:
    """Whether re-executing ``body`` must reproduce its answer exactly: greedy, one choice."""
    temperature = body.get("temperature")
    return (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and temperature == 0
        and body.get("n", 1) == 1
    )


def sampled(rate: float, draw: float) -> bool:
    """Keep an answer for checking with probability ``rate`` (``draw`` uniform in [0, 1))."""
    return draw < rate


@dataclass(frozen=True)
class Comparison:
    verdict: Literal["match", "mismatch"]
    first_difference: int | None = None  # character index in the content, when it differs


def compare(expected: Answer, received: Answer) -> Comparison:
    """The re-execution (``expected``) against what the peer sent (``received``)."""
    if expected == received:
        return Comparison("match")
    a, b = expected.content, received.content
    index = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if index is None and len(a) != len(b):
        index = min(len(a), len(b))
    return Comparison("mismatch", index)
