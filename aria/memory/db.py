"""One user's memory database: a private SQLite file, crash-safe, that forgets for real.

``ARIA_HOME/memory/<user>.sqlite3`` is created mode 0600 in a 0700 folder (its ``-wal``
and ``-shm`` companions too). Write-ahead logging with ``synchronous=FULL``: a committed
memory survives a crash of the process or the machine, a write in progress is rolled
back. ``secure_delete`` overwrites deleted rows with zeros; :func:`compact` then merges
the full-text index (so deleted words leave its segments), vacuums the file and truncates
the log, which is how ``forget`` leaves no trace in the file.

Vectors are float32 BLOBs in the memories table; :mod:`aria.memory.vectors` keeps them in
RAM for brute-force search (docs/memory.md says why not sqlite-vec). Keywords use the
standard library's FTS5 (BM25).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from aria.errors import MemoryStoreError

__all__ = ["SCHEMA_VERSION", "compact", "open_database"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('episodic', 'semantic', 'procedural')),
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    source TEXT NOT NULL,
    role TEXT,
    conversation TEXT,
    slot TEXT,
    origin TEXT,
    superseded_by TEXT,
    superseded_at REAL,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS memories_kind_time ON memories (kind, created_at);
CREATE INDEX IF NOT EXISTS memories_slot ON memories (slot) WHERE slot IS NOT NULL;
CREATE INDEX IF NOT EXISTS memories_origin ON memories (origin) WHERE origin IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, content='memories', content_rowid='pk', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text) VALUES (new.pk, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text) VALUES ('delete', old.pk, old.text);
END;
CREATE TABLE IF NOT EXISTS reminders (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    request TEXT NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('time', 'event', 'model')),
    created_at REAL NOT NULL,
    due_at REAL,
    event TEXT,
    event_embedding BLOB,
    model TEXT,
    fired_at REAL,
    fired_by TEXT,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (due_at) WHERE fired_at IS NULL;
"""

_COMPANIONS = ("-wal", "-shm")


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the memory database at ``path``, private to the user.

    Raises:
        MemoryStoreError: the file cannot be created or opened, is not an ARIA memory
            database, or was written by a newer ARIA.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        _private(path)
        connection = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
    except OSError as exc:
        raise MemoryStoreError(f"cannot open the memory file {path}: {exc.strerror}") from exc
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA secure_delete=ON")
        connection.execute("PRAGMA foreign_keys=ON")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise MemoryStoreError(
                f"{path} was written by a newer ARIA (memory schema {version}); upgrade ARIA"
            )
        with connection:
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise MemoryStoreError(f"{path} is not a readable memory database ({exc})") from exc
    except MemoryStoreError:
        connection.close()
        raise
    for suffix in _COMPANIONS:
        _private(path.with_name(path.name + suffix))
    return connection


def _private(path: Path) -> None:
    if path.exists() and (path.stat().st_mode & 0o777) != 0o600:
        path.chmod(0o600)


def compact(connection: sqlite3.Connection) -> bool:
    """Make deleted content unrecoverable from the file: merge the FTS index, vacuum,
    and truncate the write-ahead log. Returns False when another connection's open read
    kept the log from being truncated (it is truncated at the next compaction).
    """
    with connection:
        connection.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
    connection.execute("VACUUM")
    busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy
