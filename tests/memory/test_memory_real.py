"""The memory with the real default embedding model (all-MiniLM-L6-v2 in its worker).
Slow: it loads the model; skipped when it is not installed (`make setup` installs it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aria.memory import MemoryKind, MemoryService, MemoryStore, begin_turn, embedder_for
from tests.api.conftest import make_node

pytestmark = pytest.mark.slow

EMBEDDING = "all-MiniLM-L6-v2"


@pytest.fixture
async def service(tmp_path: Path, embedding_file: Path) -> AsyncIterator[MemoryService]:
    node = make_node(tmp_path / "home", {})
    node.store.import_file(embedding_file)  # recognised by its sha256 as the catalog's model
    async with node.running():
        embedder = embedder_for(node)
        assert embedder is not None and embedder.model_id == EMBEDDING
        store = MemoryStore(tmp_path / "memory.sqlite3")
        yield MemoryService(store, embedder)
        store.close()


@pytest.mark.anyio
async def test_meaning_finds_a_fact_that_shares_no_word_with_the_question(
    service: MemoryService,
) -> None:
    facts = (
        "I work as a civil engineer at Vinci",
        "My sister Clara lives in Rome",
        "I play the cello in an amateur orchestra",
        "My cat is twelve years old",
    )
    for fact in facts:
        await service.add(fact)
    hits = await service.search("What is my profession?", kinds=[MemoryKind.SEMANTIC])
    assert hits[0].memory.text == "I work as a civil engineer at Vinci"
    assert hits[0].keyword_rank is None and (hits[0].similarity or 0) > 0.3
    turn = await begin_turn(service, [{"role": "user", "content": "Which instrument do I play?"}],
                            "c", source="test")  # fmt: skip
    assert turn is not None and "cello" in " ".join(m.text for m in turn.recalled)
