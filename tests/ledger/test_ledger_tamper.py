"""Every kind of tampering with the stored chain is caught by verify, naming the entry."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aria.ledger import Ledger, canonical, sha256_hex
from aria.ledger.entries import Entry, sign_entry
from aria.signing import NodeKey
from tests.ledger.helpers import receipt

N = 8


@pytest.fixture
def key() -> NodeKey:
    return NodeKey.generate()


@pytest.fixture
def ledger_dir(tmp_path: Path, key: NodeKey) -> Iterator[Path]:
    with Ledger.open(tmp_path, key) as ledger:
        for i in range(N):
            ledger.append("inference", receipt(completion=i + 1, peer=None))
        assert ledger.verify().ok
    yield tmp_path


def _db(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / "ledger.db", isolation_level=None)


def _verify(directory: Path, key: NodeKey) -> tuple[bool, int | None, str | None]:
    with Ledger.open(directory, key) as ledger:
        report = ledger.verify()
    problem = report.problem
    return report.ok, problem.seq if problem else None, problem.reason if problem else None


def _leaves(value: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, value


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
    if value is None:
        return "x"
    return [*value, 1] if isinstance(value, list) else "x"


def _set(obj: dict[str, object], path: tuple[str, ...], value: object) -> None:
    for part in path[:-1]:
        obj = obj[part]  # type: ignore[assignment]
    obj[path[-1]] = value


def test_untouched_chain_verifies(ledger_dir: Path, key: NodeKey) -> None:
    assert _verify(ledger_dir, key) == (True, None, None)


@pytest.mark.parametrize("column", ["seq", "hash", "sig", "kind", "at_ms", "ref", "peer", "model"])
@pytest.mark.parametrize("row", [1, 4, N])
def test_any_column_of_any_row_edited_is_caught(
    ledger_dir: Path, key: NodeKey, column: str, row: int
) -> None:
    db = _db(ledger_dir)
    (value,) = db.execute(f"SELECT {column} FROM entries WHERE seq = ?", (row,)).fetchone()
    new = 100 + row if column == "seq" else _changed(value)
    db.execute(f"UPDATE entries SET {column} = ? WHERE seq = ?", (new, row))
    ok, seq, reason = _verify(ledger_dir, key)
    # the row is named by where it is stored: a moved seq is the gap or the stray row
    assert not ok and seq in ({row, 100 + row} if column == "seq" else {row}), reason


def test_every_field_inside_every_entry_is_covered(ledger_dir: Path, key: NodeKey) -> None:
    """Change each leaf of the stored JSON (re-canonicalised, hash column left): caught."""
    db = _db(ledger_dir)
    for row in (1, 5, N):
        (text,) = db.execute("SELECT entry FROM entries WHERE seq = ?", (row,)).fetchone()
        for path, value in list(_leaves(json.loads(text))):
            entry = json.loads(text)
            _set(entry, path, _changed(value))
            db.execute("UPDATE entries SET entry = ? WHERE seq = ?", (canonical(entry), row))
            ok, seq, reason = _verify(ledger_dir, key)
            assert not ok and seq == row, (path, reason)
            # even with the hash column fixed up, the signature no longer matches
            db.execute(
                "UPDATE entries SET hash = ? WHERE seq = ?", (sha256_hex(canonical(entry)), row)
            )
            ok, seq, reason = _verify(ledger_dir, key)
            assert not ok and seq == row, (path, reason)
            db.execute(
                "UPDATE entries SET entry = ?, hash = ? WHERE seq = ?",
                (text, sha256_hex(text), row),
            )
        assert _verify(ledger_dir, key)[0]


def test_non_canonical_text_is_caught(ledger_dir: Path, key: NodeKey) -> None:
    db = _db(ledger_dir)
    (text,) = db.execute("SELECT entry FROM entries WHERE seq = 3").fetchone()
    db.execute("UPDATE entries SET entry = ? WHERE seq = 3", (text.replace(",", ", ", 1),))
    assert _verify(ledger_dir, key) == (False, 3, "not_canonical")


@pytest.mark.parametrize(("row", "expected"), [(1, "unanchored"), (4, "missing")])
def test_deleting_a_row_is_caught(ledger_dir: Path, key: NodeKey, row: int, expected: str) -> None:
    _db(ledger_dir).execute("DELETE FROM entries WHERE seq = ?", (row,))
    assert _verify(ledger_dir, key) == (False, row, expected)


def test_deleting_the_newest_row_is_caught_by_the_signed_head(
    ledger_dir: Path, key: NodeKey
) -> None:
    _db(ledger_dir).execute("DELETE FROM entries WHERE seq = ?", (N,))
    assert _verify(ledger_dir, key) == (False, N, "truncated")


def test_rolling_the_head_back_with_the_rows_is_caught_by_its_signature(
    ledger_dir: Path, key: NodeKey
) -> None:
    db = _db(ledger_dir)
    db.execute("DELETE FROM entries WHERE seq = ?", (N,))
    (prev,) = db.execute("SELECT hash FROM entries WHERE seq = ?", (N - 1,)).fetchone()
    db.execute("UPDATE head SET seq = ?, hash = ?", (N - 1, prev))
    assert _verify(ledger_dir, key) == (False, N - 1, "bad_signature")


def test_swapping_two_rows_is_caught(ledger_dir: Path, key: NodeKey) -> None:
    db = _db(ledger_dir)
    rows = {
        seq: rest
        for seq, *rest in db.execute(
            "SELECT seq, hash, sig, kind, at_ms, ref, peer, model, entry FROM entries "
            "WHERE seq IN (3, 6)"
        )
    }
    for seq, other in ((3, 6), (6, 3)):
        db.execute(
            "UPDATE entries SET hash=?, sig=?, kind=?, at_ms=?, ref=?, peer=?, model=?, entry=? "
            "WHERE seq = ?",
            (*rows[other], seq),
        )
    assert _verify(ledger_dir, key) == (False, 3, "out_of_order")


def test_resigning_everything_with_another_key_is_caught(ledger_dir: Path, key: NodeKey) -> None:
    """A thief rewrites every entry and the head under its own key: not this node's."""
    forger = NodeKey.generate()
    db = _db(ledger_dir)
    prev = "0" * 64
    for seq, text in db.execute("SELECT seq, entry FROM entries ORDER BY seq").fetchall():
        old = json.loads(text)
        entry = Entry(seq, prev, old["kind"], old["at_ms"], forger.peer_id, old["body"])
        signed = sign_entry(entry, forger)
        db.execute(
            "UPDATE entries SET entry = ?, hash = ?, sig = ? WHERE seq = ?",
            (signed.text, signed.hash, signed.sig, seq),
        )
        prev = signed.hash
    assert _verify(ledger_dir, key) == (False, 1, "foreign_signer")
    # keeping our peer id in the entries does not help: the signatures are not ours
    db.execute("UPDATE meta SET value = ? WHERE key = 'signer'", (key.peer_id,))
    for seq, text in db.execute("SELECT seq, entry FROM entries ORDER BY seq").fetchall():
        entry = json.loads(text)
        entry["signer"] = key.peer_id
        db.execute(
            "UPDATE entries SET entry = ?, hash = ? WHERE seq = ?",
            (canonical(entry), sha256_hex(canonical(entry)), seq),
        )
    assert _verify(ledger_dir, key) == (False, 1, "bad_signature")


def test_a_forged_row_inserted_is_caught(ledger_dir: Path, key: NodeKey) -> None:
    forger = NodeKey.generate()
    db = _db(ledger_dir)
    (head_hash,) = db.execute("SELECT hash FROM entries WHERE seq = ?", (N,)).fetchone()
    body = receipt().to_body()
    signed = sign_entry(Entry(N + 1, head_hash, "inference", 1, forger.peer_id, body), forger)
    db.execute(
        "INSERT INTO entries VALUES (?, ?, ?, 'inference', 1, ?, NULL, 'tiny', ?)",
        (N + 1, signed.hash, signed.sig, body["id"], signed.text),
    )
    assert _verify(ledger_dir, key) == (False, N + 1, "foreign_signer")


def test_a_ledger_opened_with_another_nodes_key_is_refused(ledger_dir: Path) -> None:
    from aria.errors import LedgerError

    with pytest.raises(LedgerError, match="belongs to node"):
        Ledger.open(ledger_dir, NodeKey.generate())
