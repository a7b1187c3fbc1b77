"""The ledger file: compaction behind checkpoints, exports, totals, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from aria.errors import LedgerError
from aria.ledger import Ledger, SpotCheck, sha256_hex, verify_exports
from aria.signing import NodeKey
from tests.ledger.helpers import receipt


@pytest.fixture
def key() -> NodeKey:
    return NodeKey.generate()


def test_compaction_keeps_the_chain_verifiable_and_the_totals(tmp_path: Path, key: NodeKey) -> None:
    with Ledger.open(tmp_path, key) as ledger:
        for i in range(30):
            ledger.append("inference", receipt(model="a" if i % 2 else "b", millijoules=1000))
        before = ledger.totals().rollup("model")
        checkpoint = ledger.compact(10, archive=tmp_path / "archive-1.jsonl")
        assert checkpoint is not None and checkpoint.seq == 31
        assert ledger.count() == 11  # 10 kept + the checkpoint
        report = ledger.verify()
        assert report.ok and report.anchor == "checkpoint #20", report
        assert ledger.totals().rollup("model") == before  # nothing lost from the totals
        for _ in range(15):
            ledger.append("inference", receipt(model="a", millijoules=2000))
        assert ledger.compact(5, archive=tmp_path / "archive-2.jsonl") is not None
        assert ledger.verify().ok
        totals = {row["model"]: row for row in ledger.totals().rollup("model")}
        assert totals["a"]["requests"] == 15 + 15 and totals["b"]["requests"] == 15
        assert totals["a"]["joules"] == pytest.approx(15 * 1 + 15 * 2)
        ledger_export = tmp_path / "now.jsonl"
        from aria.ledger import write_export

        write_export(ledger_export, ledger.rows(), signer=key.peer_id, head=ledger.head())
    # the archives and the live export verify as one chain, from genesis
    files = [tmp_path / "archive-1.jsonl", tmp_path / "archive-2.jsonl", ledger_export]
    report = verify_exports(files, signer=key.peer_id)
    assert report.ok and report.anchor == "genesis" and report.last_seq == 47, report
    # a missing archive in the middle breaks the chain at the gap
    broken = verify_exports([files[0], files[2]], signer=key.peer_id)
    assert not broken.ok and broken.problem is not None and broken.problem.reason == "missing"


def test_deleting_old_rows_without_a_checkpoint_is_caught(tmp_path: Path, key: NodeKey) -> None:
    with Ledger.open(tmp_path, key) as ledger:
        for _ in range(6):
            ledger.append("inference", receipt())
    sqlite3.connect(tmp_path / "ledger.db", isolation_level=None).execute(
        "DELETE FROM entries WHERE seq <= 3"
    )
    with Ledger.open(tmp_path, key) as ledger:
        report = ledger.verify()
    assert not report.ok and report.problem is not None
    assert (report.problem.seq, report.problem.reason) == (3, "unanchored")


def test_export_is_independently_verifiable_and_tampering_shows(
    tmp_path: Path, key: NodeKey
) -> None:
    with Ledger.open(tmp_path, key) as ledger:
        for _ in range(5):
            ledger.append("inference", receipt())
        path = tmp_path / "out.jsonl"
        from aria.ledger import write_export

        assert write_export(path, ledger.rows(), signer=key.peer_id, head=ledger.head()) == 5
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "aria-ledger-export" and header["signer"] == key.peer_id
    assert bytes.fromhex(header["public_key"]) == key.public_key
    assert verify_exports([path], signer=key.peer_id).ok
    # pinned to another node: refused by signer
    other = verify_exports([path], signer=NodeKey.generate().peer_id)
    assert not other.ok and other.problem is not None and other.problem.reason == "foreign_signer"
    # the last entry dropped from the file: the head line shows it
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-2] + lines[-1:]) + "\n")
    report = verify_exports([cut], signer=key.peer_id)
    assert not report.ok and report.problem is not None and report.problem.reason == "truncated"
    # one character of an entry changed
    item = json.loads(lines[3])
    item["entry"] = item["entry"].replace('"completion_tokens":12', '"completion_tokens":13')
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join([*lines[:3], json.dumps(item), *lines[4:]]) + "\n")
    report = verify_exports([edited], signer=key.peer_id)
    assert not report.ok and report.problem is not None
    assert (report.problem.seq, report.problem.reason) == (3, "hash_mismatch")
    with pytest.raises(LedgerError, match="not an ARIA ledger export"):
        verify_exports([tmp_path / "ledger.db"])


def test_spot_checks_update_the_standing_in_the_same_transaction(
    tmp_path: Path, key: NodeKey
) -> None:
    peer = NodeKey.generate().peer_id
    with Ledger.open(tmp_path, key) as ledger:
        for verdict in ("match", "match", "mismatch"):
            ledger.record_spotcheck(
                SpotCheck(
                    peer=peer,
                    receipt_id="ab" * 16,
                    model="tiny",
                    verdict=verdict,
                    received_sha256=sha256_hex("x"),
                    expected_sha256=sha256_hex("x" if verdict == "match" else "y"),
                )
            )
        standing = ledger.standings()[peer]
        assert (standing.passed, standing.failed) == (2, 1)
        assert ledger.verify().ok


def test_read_only_ledger_refuses_appends(tmp_path: Path, key: NodeKey) -> None:
    Ledger.open(tmp_path, key).close()
    with (
        Ledger.open(tmp_path, signer=key.peer_id) as ledger,
        pytest.raises(LedgerError, match="read-only"),
    ):
        ledger.append("inference", receipt())


def _writer(directory: str, seed: bytes, count: int) -> None:
    with Ledger.open(Path(directory), NodeKey.from_seed(seed)) as ledger:
        for _ in range(count):
            ledger.append("inference", receipt())


def test_processes_appending_at_once_make_one_valid_chain(tmp_path: Path, key: NodeKey) -> None:
    Ledger.open(tmp_path, key).close()
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(str(tmp_path), key.seed, 40)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    with Ledger.open(tmp_path, key) as ledger:
        report = ledger.verify()
        assert report.ok and report.entries == 120, report
