"""Working memory: the conversation window, fitted to the model's context (pure).

A conversation is cut into turns (a user message and the replies that follow). When the
whole conversation would not fit, the system messages, the newest turns and the current
message are kept, and the older turns are dropped, least relevant to the current message
first (shared topic words), never a part of a message: a message is in or out whole. What
was dropped is still in episodic memory, so retrieval brings it back when it matters. No
summary takes their place: dropping by relevance needs no model, which the embedded 135M
chat model could not replace reliably (summarising with a capable model is not built).

Token counts are estimated (UTF-8 bytes / 3 + 4 per message), which over-counts every
tokenizer ARIA ships, so a fitted window does fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aria.memory.text import keywords, shared_words

__all__ = ["Fitted", "estimate_tokens", "fit_window"]

_PER_MESSAGE = 4


def estimate_tokens(message: dict[str, Any]) -> int:
    """An upper estimate of the tokens ``message`` takes in a prompt."""
    return len(str(message.get("content") or "").encode("utf-8")) // 3 + _PER_MESSAGE


@dataclass(frozen=True)
class Fitted:
    messages: tuple[dict[str, Any], ...]
    dropped: tuple[dict[str, Any], ...]  # whole messages left out, in order

    @property
    def trimmed(self) -> bool:
        return bool(self.dropped)


def fit_window(messages: Sequence[dict[str, Any]], budget: int, *, keep_recent: int = 1) -> Fitted:
    """The messages that fit in ``budget`` tokens (see the module docstring).

    The leading system messages, the last turn (the current message) and ``keep_recent``
    turns before it are always kept, even if they alone exceed the budget: the model then
    reports the context overflow rather than answering without the question.
    """
    lead = 0
    while lead < len(messages) and messages[lead].get("role") == "system":
        lead += 1
    system, turns = list(messages[:lead]), _turns(messages[lead:])
    if sum(estimate_tokens(m) for m in messages) <= budget or len(turns) <= keep_recent + 1:
        return Fitted(tuple(messages), ())
    fixed = turns[-(keep_recent + 1) :]
    older = turns[: -(keep_recent + 1)]
    room = budget - sum(estimate_tokens(m) for m in system + [m for t in fixed for m in t])
    topic = keywords(str(fixed[-1][0].get("content") or ""))
    ranked = sorted(
        range(len(older)),
        key=lambda i: (-len(shared_words(topic, _words(older[i]))), -i),
    )
    kept: set[int] = set()
    for index in ranked:
        cost = sum(estimate_tokens(m) for m in older[index])
        if cost <= room:
            kept.add(index)
            room -= cost
    chosen = [m for i, turn in enumerate(older) if i in kept for m in turn]
    dropped = [m for i, turn in enumerate(older) if i not in kept for m in turn]
    window = system + chosen + [m for turn in fixed for m in turn]
    return Fitted(tuple(window), tuple(dropped))


def _turns(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    turns: list[list[dict[str, Any]]] = []
    for message in messages:
        if message.get("role") == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def _words(turn: list[dict[str, Any]]) -> list[str]:
    return keywords(" ".join(str(m.get("content") or "") for m in turn))
