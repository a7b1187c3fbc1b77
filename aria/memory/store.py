"""One user's memories on disk: add, read, search, supersede and really forget.

A :class:`MemoryStore` owns one SQLite connection (:mod:`aria.memory.db`), shared by the
threads of one process under a lock; several processes may open the same file (WAL).
Search here is the two raw retrievers, keyword (FTS5 BM25) and vector (cosine); their
fusion is :mod:`aria.memory.search`. Embedding happens outside (the caller passes
vectors), so this module never loads a model.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from aria.errors import MemoryNotFound, MemoryStoreError
from aria.memory.db import compact, open_database
from aria.memory.records import Memory, MemoryKind, new_id
from aria.memory.reminders import ReminderBook
from aria.memory.vectors import VectorIndex, as_blob

__all__ = ["MemoryStore"]

_COLUMNS = (
    "pk, id, kind, text, created_at, source, role, conversation, slot, origin, superseded_by, "
    "superseded_at"
)
_ALL_KINDS = tuple(kind.value for kind in MemoryKind)


def _memory(row: Sequence[Any]) -> Memory:
    return Memory(
        id=row[1],
        kind=MemoryKind(row[2]),
        text=row[3],
        created_at=row[4],
        source=row[5],
        role=row[6],
        conversation=row[7],
        slot=row[8],
        origin=row[9],
        superseded_by=row[10],
        superseded_at=row[11],
    )


class MemoryStore:
    """The memories and reminders of one user (one file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path)
        self._lock = threading.RLock()
        self._vectors = VectorIndex(self._db)
        self.reminders = ReminderBook(self._db, self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"the memory file {self.path} failed: {exc}") from exc

    # -- writing ------------------------------------------------------------------------

    def add(
        self,
        kind: MemoryKind,
        text: str,
        *,
        source: str,
        now: float,
        vector: list[float] | None = None,
        role: str | None = None,
        conversation: str | None = None,
        slot: str | None = None,
        origin: str | None = None,
        memory_id: str | None = None,
    ) -> Memory:
        """Store one memory (committed, durable, when this returns)."""
        memory = Memory(
            id=memory_id or new_id("m"),
            kind=kind,
            text=text,
            created_at=now,
            source=source,
            role=role,
            conversation=conversation,
            slot=slot,
            origin=origin,
        )
        blob = None if vector is None else as_blob(vector)
        with self._locked() as db, db:
            cursor = db.execute(
                "INSERT INTO memories (id, kind, text, created_at, source, role, conversation, "
                "slot, origin, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (memory.id, kind.value, text, now, source, role, conversation, slot, origin, blob),
            )
            pk = int(cursor.lastrowid or 0)
        if blob is not None:
            self._vectors.append(pk, kind.value, now, blob)
        return memory

    def restore(self, memory: Memory) -> bool:
        """Insert an exported memory as it was, without a vector (import); False when a
        memory with its id exists already."""
        with self._locked() as db, db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO memories ({_COLUMNS.removeprefix('pk, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    memory.id,
                    memory.kind.value,
                    memory.text,
                    memory.created_at,
                    memory.source,
                    memory.role,
                    memory.conversation,
                    memory.slot,
                    memory.origin,
                    memory.superseded_by,
                    memory.superseded_at,
                ),  # fmt: skip
            )
            added = cursor.rowcount == 1
        if added:
            self._vectors.changed()
        return added

    def supersede(self, older: Sequence[str], newer: str, *, now: float) -> None:
        """Mark the memories ``older`` as replaced by ``newer`` (they stay in the history)."""
        with self._locked() as db, db:
            marks = ",".join("?" * len(older))
            rows = db.execute(f"SELECT pk FROM memories WHERE id IN ({marks})", tuple(older))
            pks = [int(r[0]) for r in rows]
            db.execute(
                f"UPDATE memories SET superseded_by = ?, superseded_at = ? WHERE id IN ({marks})",
                (newer, now, *older),
            )
        self._vectors.deactivate(pks)

    def forget(self, ids: Sequence[str]) -> list[str]:
        """Delete these memories and reminders everywhere (rows, vectors, keyword index),
        then compact the file so no trace is left.

        A memory learned in a conversation takes its source with it: the user's turn it
        came from and the answer to that turn (they say the same thing). Returns the ids
        deleted.

        Raises:
            MemoryNotFound: none of ``ids`` exists.
        """
        with self._locked() as db:
            with db:
                doomed = _with_sources(db, list(ids))
                marks = ",".join("?" * len(doomed))
                db.execute(f"DELETE FROM memories WHERE id IN ({marks})", tuple(doomed))
                db.execute(f"DELETE FROM reminders WHERE id IN ({marks})", tuple(doomed))
            if not doomed:
                raise MemoryNotFound(f"no memory or reminder has the id {ids[0]!r}", param="id")
            compact(db)
        self._vectors.changed()
        return doomed

    def forget_all(self, kinds: Sequence[MemoryKind] | None = None) -> int:
        """Delete every memory (of ``kinds``; with None, every reminder too), compacted."""
        with self._locked() as db:
            with db:
                if kinds is None:
                    removed = db.execute("DELETE FROM memories").rowcount
                    removed += db.execute("DELETE FROM reminders").rowcount
                else:
                    names = tuple(k.value for k in kinds)
                    marks = ",".join("?" * len(names))
                    removed = db.execute(
                        f"DELETE FROM memories WHERE kind IN ({marks})", names
                    ).rowcount
            compact(db)
        self._vectors.changed()
        return removed

    def set_vector(self, memory_id: str, vector: list[float]) -> None:
        with self._locked() as db, db:
            db.execute(
                "UPDATE memories SET embedding = ? WHERE id = ?", (as_blob(vector), memory_id)
            )
        self._vectors.changed()

    # -- reading ------------------------------------------------------------------------

    def get(self, memory_id: str) -> Memory:
        """Raises: MemoryNotFound."""
        with self._locked() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,)
            ).fetchone()
        if row is None:
            raise MemoryNotFound(f"no memory has the id {memory_id!r}", param="id")
        return _memory(row)

    def select(
        self,
        *,
        kinds: Sequence[MemoryKind] | None = None,
        limit: int = 50,
        offset: int = 0,
        include_superseded: bool = False,
        conversation: str | None = None,
        newest_first: bool = True,
    ) -> list[Memory]:
        where, params = _filters(kinds, include_superseded, None, None)
        if conversation is not None:
            where += " AND conversation = ?"
            params.append(conversation)
        order = "DESC" if newest_first else "ASC"
        with self._locked() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE {where} "
                f"ORDER BY created_at {order}, pk {order} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_memory(row) for row in rows]

    def count(self, kind: MemoryKind | None = None) -> int:
        with self._locked() as db:
            if kind is None:
                return int(db.execute("SELECT count(*) FROM memories").fetchone()[0])
            query = "SELECT count(*) FROM memories WHERE kind = ?"
            return int(db.execute(query, (kind.value,)).fetchone()[0])

    def in_slot(self, slot: str) -> list[Memory]:
        """The active semantic memories filling ``slot``."""
        with self._locked() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE slot = ? AND superseded_by IS NULL",
                (slot,),
            ).fetchall()
        return [_memory(row) for row in rows]

    def by_pk(self, pks: Sequence[int]) -> dict[int, Memory]:
        if not pks:
            return {}
        marks = ",".join("?" * len(pks))
        with self._locked() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE pk IN ({marks})", tuple(pks)
            ).fetchall()
        return {int(row[0]): _memory(row) for row in rows}

    def without_vectors(self, limit: int) -> list[tuple[str, str]]:
        """``(id, text)`` of memories not embedded yet (imports, a changed model)."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT id, text FROM memories WHERE embedding IS NULL ORDER BY pk LIMIT ?",
                (limit,),
            ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def meta(self, key: str) -> str | None:
        with self._locked() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._locked() as db, db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def drop_vectors(self) -> None:
        """Forget every vector (the embedding model changed; they are recomputed)."""
        with self._locked() as db, db:
            db.execute("UPDATE memories SET embedding = NULL")
            db.execute("UPDATE reminders SET event_embedding = NULL")
        self._vectors.changed()

    # -- the two retrievers -------------------------------------------------------------

    def cosines(self, pks: Sequence[int], vector: list[float]) -> dict[int, float]:
        """The cosine similarity of each memory in ``pks`` to ``vector``."""
        with self._locked():
            return self._vectors.cosines(list(pks), vector)

    def keyword(
        self,
        match: str,
        limit: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
        since: float | None = None,
        until: float | None = None,
        include_superseded: bool = False,
    ) -> list[tuple[int, float]]:
        """``(pk, bm25)`` of the best keyword matches (lower BM25 is better), best first.

        ``match`` is an FTS5 expression (:func:`aria.memory.text.fts_query`).
        """
        where, params = _filters(kinds, include_superseded, since, until, table="m.")
        with self._locked() as db:
            rows = db.execute(
                "SELECT m.pk, bm25(memories_fts) AS rank FROM memories_fts "
                "JOIN memories m ON m.pk = memories_fts.rowid "
                f"WHERE memories_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                (match, *params, limit),
            ).fetchall()
        return [(int(row[0]), float(row[1])) for row in rows]

    def similar(
        self,
        vector: list[float],
        limit: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
        since: float | None = None,
        until: float | None = None,
        include_superseded: bool = False,
    ) -> list[tuple[int, float]]:
        """``(pk, cosine)`` of the most similar memories, best first."""
        names = tuple(k.value for k in kinds) if kinds else _ALL_KINDS
        with self._locked():
            return self._vectors.search(
                vector,
                limit,
                kinds=names,
                since=since,
                until=until,
                include_superseded=include_superseded,
            )


def _with_sources(db: sqlite3.Connection, ids: list[str]) -> list[str]:
    """``ids`` that exist, plus the turns the memories among them came from and the
    other memories drawn from those turns."""
    marks = ",".join("?" * len(ids))
    found = [r[0] for r in db.execute(f"SELECT id FROM reminders WHERE id IN ({marks})", ids)]
    rows = db.execute(f"SELECT id, origin FROM memories WHERE id IN ({marks})", ids).fetchall()
    memories = {r[0] for r in rows}
    origins = {r[1] for r in rows if r[1]} | memories
    if not origins:
        return found
    marks = ",".join("?" * len(origins))
    related = db.execute(
        f"SELECT id FROM memories WHERE id IN ({marks}) OR origin IN ({marks})",
        (*origins, *origins),
    ).fetchall()
    return found + sorted(memories | {r[0] for r in related})


def _filters(
    kinds: Sequence[MemoryKind] | None,
    include_superseded: bool,
    since: float | None,
    until: float | None,
    table: str = "",
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["1"]
    params: list[Any] = []
    if kinds:
        clauses.append(f"{table}kind IN ({','.join('?' * len(kinds))})")
        params += [k.value for k in kinds]
    if not include_superseded:
        clauses.append(f"{table}superseded_by IS NULL")
    if since is not None:
        clauses.append(f"{table}created_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{table}created_at < ?")
        params.append(until)
    return " AND ".join(clauses), params
