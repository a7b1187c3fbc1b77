"""The ledger on disk: an append-only SQLite file, ``ARIA_HOME/ledger/ledger.db``.

Crash safety: WAL journal with ``synchronous=FULL`` (every commit is fsynced before
``append`` returns), and each append is one ``BEGIN IMMEDIATE`` transaction that
reads the head, inserts the signed entry and moves the signed head — so a process
killed at any instant leaves the chain as it was before or after that entry, never
half of it. Several processes (the API, the node, a CLI command) append to the same
file: the immediate transaction serialises them and each sees the newest head.

Beside the chain, two small tables hold state that is *not* provenance but is derived
from it or waits for it: ``standing`` (each peer's spot-check tally, updated in the
same transaction as the ``spotcheck`` entry that changes it) and ``pending`` (work
received from peers, kept only until it has been spot-checked or dropped).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aria.errors import LedgerError
from aria.ledger.bodies import Body, Checkpoint, SpotCheck
from aria.ledger.chain import Head, StoredRow, VerifyReport, columns_of, sign_head, verify_chain
from aria.ledger.entries import GENESIS, Entry, SignedEntry, sign_entry
from aria.ledger.totals import Totals, fold_receipts
from aria.signing import NodeKey

__all__ = ["LEDGER_FILE", "Ledger", "Pending", "Standing"]

LEDGER_FILE = "ledger.db"
_SCHEMA_VERSION = "1"
_BUSY_TIMEOUT_MS = 15_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    ref TEXT,
    peer TEXT,
    model TEXT,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_ref ON entries(ref);
CREATE INDEX IF NOT EXISTS entries_kind_time ON entries(kind, at_ms);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS standing (
    peer TEXT PRIMARY KEY,
    passed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    receipt_id TEXT PRIMARY KEY,
    peer TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    received TEXT NOT NULL,
    queued_ms INTEGER NOT NULL
);
"""

_COLUMNS = ("kind", "at_ms", "ref", "peer", "model")


@dataclass(frozen=True)
class Standing:
    """A peer's spot-check record: work re-executed and found equal, or not."""

    peer: str
    passed: int
    failed: int
    updated_ms: int


@dataclass(frozen=True)
class Pending:
    """Work received from a peer, waiting to be re-executed here."""

    receipt_id: str
    peer: str
    model: str
    request: dict[str, Any]
    received: dict[str, Any]
    queued_ms: int


def _now_ms() -> int:
    return int(time.time() * 1000)


class Ledger:
    """One node's ledger file; ``key`` signs what is appended (read-only without it).

    Thread-safe (one connection behind a lock); open one per process.
    """

    def __init__(self, path: Path, key: NodeKey | None, *, signer: str) -> None:
        self.path = path
        self.signer = signer
        self._key = key
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
            )
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {path}: {exc}") from None

    @classmethod
    def open(
        cls, directory: Path, key: NodeKey | None = None, *, signer: str | None = None
    ) -> Ledger:
        """Open (creating if needed) the ledger in ``directory``.

        With ``key`` the ledger can be appended to; it must belong to that key's node.

        Raises:
            LedgerError: the file cannot be opened or created, or belongs to another node.
        """
        owner = key.peer_id if key is not None else signer
        if owner is None:
            raise ValueError("a ledger is opened with its node's key or its signer's peer id")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ledger = cls(directory / LEDGER_FILE, key, signer=owner)
        try:
            ledger._init_schema()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _init_schema(self) -> None:
        with self._lock:
            try:
                self._db.executescript(_SCHEMA)  # idempotent; runs outside a transaction
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot create the ledger {self.path}: {exc}") from None
        with self._write() as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                db.execute("INSERT INTO meta VALUES ('signer', ?)", (self.signer,))
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
                return
            if rows.get("signer") != self.signer:
                raise LedgerError(
                    f"the ledger {self.path} belongs to node {rows.get('signer')}, "
                    f"not to this node ({self.signer})"
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction (the write lock among all processes)."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise LedgerError(f"the ledger {self.path} is not writable: {exc}") from None
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise LedgerError(f"cannot write the ledger {self.path}: {exc}") from None

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read the ledger {self.path}: {exc}") from None

    # -- appending ----------------------------------------------------------------------

    def append(self, kind: str, body: Body, *, at_ms: int | None = None) -> SignedEntry:
        """Sign ``body`` as the next entry and commit it (fsynced) before returning.

        Raises:
            LedgerError: the ledger is read-only here, or the write failed.
        """
        with self._write() as db:
            return self._append(db, kind, body, at_ms)

    def record_spotcheck(self, check: SpotCheck) -> SignedEntry:
        """Append a ``spotcheck`` entry, update the peer's standing, drop its pending work."""
        passed = 1 if check.verdict == "match" else 0
        with self._write() as db:
            signed = self._append(db, "spotcheck", check, None)
            db.execute(
                "INSERT INTO standing (peer, passed, failed, updated_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(peer) DO UPDATE SET passed = passed + excluded.passed, "
                "failed = failed + excluded.failed, updated_ms = excluded.updated_ms",
                (check.peer, passed, 1 - passed, _now_ms()),
            )
            db.execute("DELETE FROM pending WHERE receipt_id = ?", (check.receipt_id,))
            return signed

    def _append(
        self, db: sqlite3.Connection, kind: str, body: Body, at_ms: int | None
    ) -> SignedEntry:
        if self._key is None:
            raise LedgerError("this ledger was opened read-only (no node key)")
        head = db.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        entry = Entry(seq, prev, kind, at_ms or _now_ms(), self.signer, body.to_body())
        signed = sign_entry(entry, self._key)
        columns = columns_of(entry.to_json())
        db.execute(
            "INSERT INTO entries (seq, hash, sig, kind, at_ms, ref, peer, model, entry) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (signed.seq, signed.hash, signed.sig, *(columns[c] for c in _COLUMNS), signed.text),
        )
        moved = sign_head(signed.seq, signed.hash, self._key)
        db.execute(
            "INSERT INTO head (id, seq, hash, sig) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO "
            "UPDATE SET seq = excluded.seq, hash = excluded.hash, sig = excluded.sig",
            (moved.seq, moved.hash, moved.sig),
        )
        return signed

    # -- reading ------------------------------------------------------------------------

    def head(self) -> Head | None:
        rows = self._read("SELECT seq, hash, sig FROM head WHERE id = 1")
        return Head(*rows[0]) if rows else None

    def rows(self, *, batch: int = 2000) -> Iterator[StoredRow]:
        """Every stored entry in ``seq`` order, with its query columns."""
        after = -1
        while True:
            chunk = self._read(
                "SELECT seq, hash, sig, kind, at_ms, ref, peer, model, entry FROM entries "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, batch),
            )
            for seq, hash_, sig, *columns, text in chunk:
                yield StoredRow(
                    SignedEntry(seq, text, hash_, sig), dict(zip(_COLUMNS, columns, strict=True))
                )
            if len(chunk) < batch:
                return
            after = chunk[-1][0]

    def verify(self) -> VerifyReport:
        """The whole stored chain checked against this node's key and signed head."""
        return verify_chain(self.rows(), signer=self.signer, head=self.head())

    def entries(
        self,
        *,
        kind: str | None = None,
        since_ms: int | None = None,
        peer: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[SignedEntry]:
        """Entries matching the filters (as stored: verify before trusting them)."""
        where: list[str] = ["1 = 1"]
        args: list[str | int] = []
        for column, value in (("kind", kind), ("peer", peer)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since_ms is not None:
            where.append("at_ms >= ?")
            args.append(since_ms)
        order = "DESC" if newest_first else "ASC"
        sql = (
            "SELECT seq, entry, hash, sig FROM entries "
            f"WHERE {' AND '.join(where)} ORDER BY seq {order}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [SignedEntry(*row) for row in self._read(sql, tuple(args))]

    def find(self, ref: str) -> SignedEntry | None:
        """An entry by ``seq`` number, receipt id, or hash (a unique prefix of 8+ hex chars)."""
        ref = ref.strip().lower()
        if ref.isdigit():
            rows = self._read(
                "SELECT seq, entry, hash, sig FROM entries WHERE seq = ?", (int(ref),)
            )
        else:
            rows = self._read(
                "SELECT seq, entry, hash, sig FROM entries WHERE ref = ? ORDER BY seq LIMIT 1",
                (ref,),
            )
            if not rows and len(ref) >= 8 and all(c in "0123456789abcdef" for c in ref):
                rows = self._read(
                    "SELECT seq, entry, hash, sig FROM entries WHERE hash LIKE ? LIMIT 2",
                    (ref + "%",),
                )
                rows = rows if len(rows) == 1 else []
        return SignedEntry(*rows[0]) if rows else None

    def count(self) -> int:
        return int(self._read("SELECT count(*) FROM entries")[0][0])

    def first_seq(self) -> int | None:
        value = self._read("SELECT min(seq) FROM entries")[0][0]
        return int(value) if value is not None else None

    # -- peers' standing and pending checks ----------------------------------------------

    def standings(self) -> dict[str, Standing]:
        rows = self._read("SELECT peer, passed, failed, updated_ms FROM standing")
        return {row[0]: Standing(*row) for row in rows}

    def add_pending(self, pending: Pending, *, limit: int) -> bool:
        """Keep received work for a later spot check (False: ``limit`` already wait)."""
        with self._write() as db:
            waiting = db.execute("SELECT count(*) FROM pending").fetchone()[0]
            if waiting >= limit:
                return False
            db.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?)",
                (
                    pending.receipt_id,
                    pending.peer,
                    pending.model,
                    json.dumps(pending.request),
                    json.dumps(pending.received),
                    pending.queued_ms,
                ),
            )
            return True

    def pending(self, *, models: set[str] | None = None, limit: int = 16) -> list[Pending]:
        """Work waiting to be checked, oldest first (only for ``models`` when given)."""
        rows = self._read(
            "SELECT receipt_id, peer, model, request, received, queued_ms FROM pending "
            "ORDER BY queued_ms LIMIT ?",
            (limit * 4 if models is not None else limit,),
        )
        found = [
            Pending(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5])
            for r in rows
            if models is None or r[2] in models
        ]
        return found[:limit]

    def drop_pending(self, receipt_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM pending WHERE receipt_id = ?", (receipt_id,))

    # -- compaction ---------------------------------------------------------------------

    def compact(self, keep: int, *, archive: Path | None = None) -> SignedEntry | None:
        """Remove all but the newest ``keep`` entries, leaving a signed checkpoint that
        anchors the rest, carries the energy and token totals of everything removed
        (added to the previous checkpoint's), and names the archive: with ``archive``,
        the removed entries are first exported there (a verifiable file).

        Returns the checkpoint entry, or None when there was nothing to remove.

        Raises:
            LedgerError: the ledger is read-only here, or a write failed.
        """
        from aria.ledger.export import write_export

        with self._write() as db:
            head = db.execute("SELECT seq FROM head WHERE id = 1").fetchone()
            first = db.execute("SELECT min(seq) FROM entries").fetchone()[0]
            if head is None or first is None or head[0] - keep < first:
                return None
            through = head[0] - keep
            removed = [
                StoredRow(SignedEntry(seq, text, hash_, sig))
                for seq, text, hash_, sig in db.execute(
                    "SELECT seq, entry, hash, sig FROM entries WHERE seq <= ? ORDER BY seq",
                    (through,),
                ).fetchall()
            ]
            if archive is not None:
                write_export(archive, removed, signer=self.signer, head=None)
            totals = self._carried_totals(db)
            totals.merge(
                fold_receipts(
                    (d["at_ms"], d["body"])
                    for d in (row.entry.decoded() for row in removed)
                    if d.get("kind") == "inference"
                )
            )
            checkpoint = Checkpoint(
                through_seq=through,
                through_hash=removed[-1].entry.hash,
                compacted=len(removed),
                archive=archive.name if archive is not None else None,
                totals=totals.to_json(),
            )
            signed = self._append(db, "checkpoint", checkpoint, None)
            db.execute("DELETE FROM entries WHERE seq <= ?", (through,))
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return signed

    @staticmethod
    def _carried_totals(db: sqlite3.Connection) -> Totals:
        """The totals the newest checkpoint carries (of everything compacted before it)."""
        row = db.execute(
            "SELECT entry FROM entries WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return Totals()
        return Totals.from_json(json.loads(row[0])["body"].get("totals", {}))

    def totals(self, *, since_ms: int | None = None) -> Totals:
        """Energy and token totals of the receipts kept (since ``since_ms``), plus — when
        ``since_ms`` is None or reaches back before the newest checkpoint — the totals
        that checkpoint carries of compacted entries."""
        totals = Totals()
        with self._lock:
            carried = self._carried_totals(self._db)
        if since_ms is None or (carried.until_ms is not None and since_ms <= carried.until_ms):
            totals.merge(carried)
        rows = self._read(
            "SELECT at_ms, entry FROM entries WHERE kind = 'inference' AND at_ms >= ?",
            (since_ms or 0,),
        )
        totals.merge(fold_receipts((at, json.loads(text)["body"]) for at, text in rows))
        return totals
