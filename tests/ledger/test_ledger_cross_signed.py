"""A cross-signed receipt end to end between two nodes' ledgers (the exchange's logic,
without the network): each keeps both signatures and both ledgers verify."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from aria.ledger import Ack, Answer, Ledger, json_digest, sign_ack
from aria.ledger.entries import canonical
from aria.p2p.receipts import (
    AckFrame,
    Checked,
    Refuted,
    WorkFrame,
    check_ack,
    check_work,
    consumed_receipt,
)
from aria.signing import NodeKey
from tests.ledger.helpers import receipt

BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}


def _served(server: Ledger, requester: NodeKey, text: str) -> WorkFrame:
    entry = server.append("inference", receipt(role="served", peer=requester.peer_id, text=text))
    return WorkFrame(entry=entry.text, hash=entry.hash, sig=entry.sig)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[NodeKey, Ledger, NodeKey, Ledger]:
    server_key, requester_key = NodeKey.generate(), NodeKey.generate()
    return (
        server_key,
        Ledger.open(tmp_path / "server", server_key),
        requester_key,
        Ledger.open(tmp_path / "requester", requester_key),
    )


def test_both_ledgers_keep_both_signatures(pair: tuple[NodeKey, Ledger, NodeKey, Ledger]) -> None:
    server_key, server, requester_key, requester = pair
    frame = _served(server, requester_key, "Paris")
    answer = Answer("Paris", (), "stop")
    checked = check_work(
        frame,
        server=server_key.peer_id,
        requester=requester_key.peer_id,
        model="tiny",
        answer=answer,
    )
    assert isinstance(checked, Checked)
    ack = Ack(
        receipt=frame.hash,
        by=requester_key.peer_id,
        request_sha256=json_digest(BODY),
        received_sha256=answer.sha256,
        received_at_ms=1,
    )
    signature = sign_ack(ack, requester_key)
    mine = consumed_receipt(
        server=server_key.peer_id,
        model="tiny",
        answer=answer,
        request_sha256=json_digest(BODY),
        started_ms=1,
        duration_ms=5,
        origin="api",
        checked=checked,
        ack=ack,
        ack_sig=signature,
    )
    requester.append("inference", mine)
    countersign = check_ack(
        AckFrame(ack=ack, sig=signature),
        peer=requester_key.peer_id,
        receipt_id=checked.receipt.id,
        receipt_hash=frame.hash,
    )
    assert countersign is not None
    server.append("countersign", countersign)
    assert server.verify().ok and requester.verify().ok
    assert (
        mine.energy.source == "peer" and mine.completion_tokens == checked.receipt.completion_tokens
    )
    # someone else's ack, or an ack of another receipt, is not recorded
    stranger = NodeKey.generate()
    forged = Ack(**{**ack.model_dump(), "by": stranger.peer_id})
    assert (
        check_ack(
            AckFrame(ack=forged, sig=sign_ack(forged, stranger)),
            peer=requester_key.peer_id,
            receipt_id=checked.receipt.id,
            receipt_hash=frame.hash,
        )
        is None
    )
    assert (
        check_ack(
            AckFrame(ack=ack, sig=signature),
            peer=requester_key.peer_id,
            receipt_id=checked.receipt.id,
            receipt_hash="0" * 64,
        )
        is None
    )


def test_tampering_with_the_servers_entry_inside_our_receipt_is_caught(
    pair: tuple[NodeKey, Ledger, NodeKey, Ledger], tmp_path: Path
) -> None:
    server_key, server, requester_key, requester = pair
    frame = _served(server, requester_key, "Paris")
    answer = Answer("Paris", (), "stop")
    checked = check_work(
        frame,
        server=server_key.peer_id,
        requester=requester_key.peer_id,
        model="tiny",
        answer=answer,
    )
    assert isinstance(checked, Checked)
    ack = Ack(
        receipt=frame.hash,
        by=requester_key.peer_id,
        request_sha256="a" * 64,
        received_sha256=answer.sha256,
        received_at_ms=1,
    )
    requester.append(
        "inference",
        consumed_receipt(
            server=server_key.peer_id,
            model="tiny",
            answer=answer,
            request_sha256="a" * 64,
            started_ms=1,
            duration_ms=1,
            origin="api",
            checked=checked,
            ack=ack,
            ack_sig=sign_ack(ack, requester_key),
        ),
    )
    # rewrite the embedded server entry (more tokens claimed), re-sign our own entry
    db = sqlite3.connect(tmp_path / "requester" / "ledger.db", isolation_level=None)
    (text,) = db.execute("SELECT entry FROM entries WHERE seq = 1").fetchone()
    entry = json.loads(text)
    work = json.loads(entry["body"]["work"]["entry"])
    work["body"]["completion_tokens"] += 100
    entry["body"]["work"]["entry"] = canonical(work)
    from aria.ledger.entries import Entry, sign_entry

    signed = sign_entry(
        Entry(1, entry["prev"], "inference", entry["at_ms"], requester_key.peer_id, entry["body"]),
        requester_key,
    )
    db.execute(
        "UPDATE entries SET entry = ?, hash = ?, sig = ? WHERE seq = 1",
        (signed.text, signed.hash, signed.sig),
    )
    db.execute("UPDATE head SET hash = ?", (signed.hash,))
    report = requester.verify()
    assert not report.ok and report.problem is not None
    assert report.problem.reason == "bad_peer_signature"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("signature", "bad_signature"),
        ("requester", "not_for_us"),
        ("model", "wrong_model"),
        ("answer", "receipt_mismatch"),
    ],
)
def test_the_requester_refutes_a_receipt_that_does_not_hold(
    pair: tuple[NodeKey, Ledger, NodeKey, Ledger], change: str, reason: str
) -> None:
    server_key, server, requester_key, _ = pair
    frame = _served(server, requester_key, "Paris")
    requester = requester_key.peer_id
    model, answer = "tiny", Answer("Paris", (), "stop")
    if change == "signature":
        frame = WorkFrame(
            entry=frame.entry, hash=frame.hash, sig=NodeKey.generate().sign(b"x").hex()
        )
    elif change == "requester":
        requester = NodeKey.generate().peer_id
    elif change == "model":
        model = "other"
    else:
        answer = Answer("Lyon", (), "stop")
    result = check_work(
        frame, server=server_key.peer_id, requester=requester, model=model, answer=answer
    )
    assert isinstance(result, Refuted) and result.reason == reason
