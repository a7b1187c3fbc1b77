"""Facts a capable local model finds in a message: semantic memory without "remember that".

Only a chat model of at least ``memory.extract_min_params_b`` billion parameters (1 by
default) is asked, and only when it runs on this machine (never split over peers): the embedded
SmolLM2-135M invents facts more often than it finds them,
so with it ARIA learns only from explicit statements (:mod:`aria.memory.statements`). The
answer is constrained by a JSON schema (a llama.cpp grammar), so it always parses; each
fact then goes through the same deduplication and supersession as a stated one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aria.backends import GenerationJob, GrammarSpec, TokenEvent
from aria.catalog import Capability, CatalogEntry
from aria.errors import MemoryDisabled
from aria.memory.conversation import TurnMemory
from aria.memory.records import MemoryKind
from aria.memory.service import Learned, MemoryService

if TYPE_CHECKING:
    from aria.node import Node

__all__ = ["SCHEMA", "can_extract", "extract_facts", "learn_from_answer"]

SCHEMA = {
    "type": "object",
    "properties": {
        "facts": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 200}}
    },
    "required": ["facts"],
}

_INSTRUCTION = (
    "You find durable facts about the user in their message: where they live or work, "
    "family, health, tastes, plans. Write each fact in the first person, as the user would "
    '("I live in Lyon"). Only facts the message states; none in a question or small talk. '
    'Answer with JSON: {"facts": [...]}, an empty list when there are none.'
)
_MAX_CHARS = 4000


def can_extract(entry: CatalogEntry, min_params_b: float) -> bool:
    """Is this chat model big enough to be trusted with extraction?"""
    return Capability.CHAT in entry.capabilities and entry.params_b >= min_params_b


def _here_only(job: GenerationJob, n_ctx: int, local: bool) -> GenerationJob:
    if not local:  # memory work never leaves the machine, not even as activations
        raise MemoryDisabled("fact extraction runs only on a model loaded on this machine")
    return job


async def extract_facts(node: Node, model_id: str, message: str) -> list[str]:
    """The facts ``model_id`` finds in ``message`` (a local generation, temperature 0).

    Raises:
        The node's errors (a model that cannot run); the caller decides whether to care.
    """
    job = GenerationJob(
        messages=(
            {"role": "system", "content": _INSTRUCTION},
            {"role": "user", "content": message[:_MAX_CHARS]},
        ),
        max_tokens=200,
        temperature=0.0,
        grammar=GrammarSpec(kind="json_schema", schema=SCHEMA),
    )
    parts = []
    # local-only: never a peer, never a split (and the hook checks it once placed).
    generating = node.generate(job, model_id, placement="local-only", prepare=_here_only)
    async with await generating as served:
        async for event in served.events():
            if isinstance(event, TokenEvent):
                parts.append(event.text)
    try:
        facts = json.loads("".join(parts)).get("facts", [])
    except (ValueError, AttributeError):
        return []  # cut short by max_tokens
    return [" ".join(f.split()) for f in facts if isinstance(f, str) and f.strip()]


async def learn_from_answer(
    node: Node, service: MemoryService, turn: TurnMemory, model_id: str
) -> list[Learned]:
    """Extract facts from the user's message of ``turn`` with ``model_id`` and remember
    them (linked to that message, so forgetting one forgets where it came from)."""
    if turn.learned is not None and turn.learned.memory is not None:
        return []  # an explicit statement: already remembered as said
    learned = []
    for fact in await extract_facts(node, model_id, turn.message):
        learned.append(
            await service.add(
                fact, kind=MemoryKind.SEMANTIC, source="extracted", origin=turn.turn_id
            )
        )
    return learned
