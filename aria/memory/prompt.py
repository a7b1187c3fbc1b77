"""The memory block put in front of a conversation (pure).

One system message, short enough for a small model: the standing instructions first (they
apply to every answer), then the facts and past exchanges that matched the message, then
what to tell the user now (reminders that fired, what was just saved). Dates are shown so
the model can tell old from new.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aria.memory.records import Memory, MemoryKind, Reminder

__all__ = ["memory_block", "with_memory"]


def _day(moment: float) -> str:
    return datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d")


def memory_block(
    recalled: Sequence[Memory],
    procedures: Sequence[Memory],
    reminders: Sequence[Reminder],
    notes: Sequence[str],
) -> str | None:
    """The system text for these memories, or None when there is nothing to say."""
    lines: list[str] = []
    if procedures:
        lines.append("The user's standing instructions (follow them):")
        lines += [f"- {m.text}" for m in procedures]
    facts = [m for m in recalled if m.kind is not MemoryKind.EPISODIC]
    episodes = [m for m in recalled if m.kind is MemoryKind.EPISODIC]
    if facts:
        lines.append("What the user told you before (first person = the user):")
        lines += [f"- {m.text} ({_day(m.created_at)})" for m in facts]
    if episodes:
        lines.append("From earlier conversations:")
        lines += [f"- {_day(m.created_at)}, {m.role or 'user'}: {m.text}" for m in episodes]
    if reminders:
        lines.append("Remind the user now:")
        lines += [f"- {r.text} (they asked: {r.request})" for r in reminders]
    lines += notes
    if not lines:
        return None
    return "Memory (private to this user; use it when it helps, do not recite it):\n" + "\n".join(
        lines
    )


def with_memory(
    messages: Sequence[dict[str, Any]], block: str | None
) -> tuple[dict[str, Any], ...]:
    """``messages`` with ``block`` added to the system message (a new one if none)."""
    if block is None:
        return tuple(messages)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{block}".strip()
        return (first, *messages[1:])
    return ({"role": "system", "content": block}, *messages)
