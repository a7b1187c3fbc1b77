"""The memory file: private, crash-safe, searchable, and forgetting for real."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from aria.errors import MemoryNotFound, MemoryStoreError
from aria.memory import MemoryKind, MemoryStore, Mode
from aria.memory.db import SCHEMA_VERSION
from aria.memory.search import Query, search
from aria.memory.vectors import as_blob
from tests.memory.fakes import vector

SECRET = "Zanzibarquartz"


def _files(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def test_the_file_and_its_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "memory" / "local.sqlite3"
    with MemoryStore(path) as store:
        store.add(
            MemoryKind.SEMANTIC, "I live in Lyon", source="test", now=1.0, vector=vector("lyon")
        )
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in _files(path)}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes


def test_hybrid_vector_and_keyword_search_with_filters(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.sqlite3") as store:
        garden = store.add(MemoryKind.EPISODIC, "We planted tomatoes in the garden", source="t",
                           now=100.0, vector=vector("tomatoes garden"), role="user")  # fmt: skip
        store.add(
            MemoryKind.SEMANTIC, "I live in Lyon", source="t", now=200.0, vector=vector("lyon")
        )
        query = Query("tomato gardening", vector("tomatoes garden"), limit=2)
        for mode in Mode:
            assert search(store, query, mode)[0].memory == garden, mode
        later = search(store, Query("garden", vector("garden"), since=150.0), Mode.HYBRID)
        assert garden not in [h.memory for h in later]
        semantic_only = Query("garden", vector("garden"), kinds=(MemoryKind.SEMANTIC,))
        assert all(h.memory.kind is MemoryKind.SEMANTIC for h in search(store, semantic_only))


def test_superseded_facts_leave_search_but_stay_in_the_history(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.sqlite3") as store:
        old = store.add(
            MemoryKind.SEMANTIC, "I live in Lyon", source="t", now=1.0, vector=vector("live lyon")
        )
        new = store.add(
            MemoryKind.SEMANTIC, "I live in Paris", source="t", now=2.0, vector=vector("live paris")
        )
        store.supersede([old.id], new.id, now=3.0)
        found = [h.memory.id for h in search(store, Query("where do I live", vector("live")))]
        assert found == [new.id]
        history = store.select(include_superseded=True)
        assert {m.id: m.superseded_by for m in history} == {old.id: new.id, new.id: None}


def test_forget_removes_every_trace_from_the_files(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    marker = [float(x) for x in np.random.default_rng(5).standard_normal(128)]  # dense bytes
    with MemoryStore(path) as store:
        turn = store.add(MemoryKind.EPISODIC, f"remember that my safe code is {SECRET}", source="t",
                         now=1.0, vector=vector("safe code"), role="user")  # fmt: skip
        fact = store.add(MemoryKind.SEMANTIC, f"my safe code is {SECRET}", source="t", now=1.0,
                         vector=marker, origin=turn.id)  # fmt: skip
        keep = store.add(
            MemoryKind.SEMANTIC, "I live in Lyon", source="t", now=2.0, vector=vector("lyon")
        )
        for i in range(50):  # enough pages that the secret is not only in the last one
            store.add(
                MemoryKind.EPISODIC,
                f"filler {i} " * 20,
                source="t",
                now=3.0 + i,
                vector=vector(f"f{i}"),
            )
        assert search(store, Query(SECRET, None), Mode.KEYWORD)

        deleted = store.forget([fact.id])  # the turn it was learned from goes too

        assert set(deleted) == {fact.id, turn.id}
        assert search(store, Query(SECRET, None), Mode.KEYWORD) == []
        assert search(store, Query("safe code", marker), Mode.VECTOR)[0].memory.id != fact.id
        assert store.get(keep.id).text == "I live in Lyon"
        with pytest.raises(MemoryNotFound):
            store.get(fact.id)
    blob = b"".join(p.read_bytes() for p in _files(path))
    assert SECRET.encode() not in blob and SECRET.lower().encode() not in blob
    assert as_blob(marker) not in blob and as_blob(marker)[:64] not in blob
    with MemoryStore(path) as store:  # still a sound database
        assert store.count() == 51


def test_forget_all_and_unknown_ids(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "m.sqlite3") as store:
        store.add(MemoryKind.SEMANTIC, "a fact", source="t", now=1.0)
        store.add(MemoryKind.EPISODIC, "a turn", source="t", now=1.0)
        with pytest.raises(MemoryNotFound):
            store.forget(["m_000000000000"])
        assert store.forget_all([MemoryKind.EPISODIC]) == 1
        assert store.forget_all() == 1 and store.count() == 0


def test_a_file_that_is_not_a_memory_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(MemoryStoreError, match="not a readable memory database"):
        MemoryStore(path)
    newer = tmp_path / "newer.sqlite3"
    connection = sqlite3.connect(newer)
    connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(MemoryStoreError, match="newer ARIA"):
        MemoryStore(newer)


def test_another_process_sees_new_memories_in_its_vector_search(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with MemoryStore(path) as reader, MemoryStore(path) as writer:
        assert search(reader, Query("lyon", vector("lyon")), Mode.VECTOR) == []
        writer.add(
            MemoryKind.SEMANTIC, "I live in Lyon", source="t", now=1.0, vector=vector("lyon")
        )
        assert [
            h.memory.text for h in search(reader, Query("lyon", vector("lyon")), Mode.VECTOR)
        ] == ["I live in Lyon"]
    assert os.path.exists(path)
