"""Proof of useful work with real nodes: three ARIA homes, each a node and an API process.

A (requester: has the model itself, lets prompts reach peers, re-executes every greedy
answer it gets) uses B (honest) and C (a real node whose API runs with the test-only
switch ``ARIA_TEST_ONLY_PERTURB_PEER_ANSWERS``: it alters half of the answers it
generates for peers, and signs receipts over what it sent). A must catch C by spot
re-execution within a few requests, C's reputation must fall below A's
``use.min_reputation`` so A stops choosing it, and B must never be flagged across 200
checked answers. Every ledger involved must verify, with cross-signed receipts on both
sides.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aria.catalog import load_catalog, load_denylist
from aria.cheat import CHEAT_ENV
from aria.config import AriaPaths, update_settings
from aria.convert.synthetic import write_llama_gguf
from aria.errors import ConsentRefused
from aria.ledger import Ledger
from aria.p2p.control import NodeClient
from aria.p2p.identity import load_identity
from aria.store import ModelStore
from tests.p2p.procs import Api, NodeProc, aria_cli, start_api, start_node, wait_for

pytestmark = pytest.mark.slow

MODEL = "tiny-work"
MIN_REPUTATION = 0.2
CATCH_WITHIN = 8  # requests to the cheater before it must have been caught
HONEST_CHECKS = 200
# Each request opens two streams on B (inference, then the receipt exchange) and B's guard
# admits 10 streams/s per peer (burst 40, aria/p2p/protocol.toml): on an idle machine the
# tiny model answers faster than that, so the honest run is paced like a real client.
PACE_S = 0.25


@dataclass
class Trio:
    a: NodeProc
    b: NodeProc
    c: NodeProc
    apis: list[Api]
    b_id: str
    c_id: str

    def infer(self, prompt: str, peer: str | None = None) -> tuple[str, str]:
        """One greedy request from A; (the peer that served it, the answer text). Named
        peer: through A's node (the chain entry's control op); otherwise through A's API
        with ``peers-first``, so A's placement decision (its ranking) picks the peer."""
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 12,
        }
        if peer is None:
            reply = httpx.post(
                self.apis[0].url + "/v1/chat/completions",
                json=body,
                headers={"x-aria-placement": "peers-first"},
                timeout=120,
            )
            assert reply.status_code == 200, reply.text
            answer = reply.json()["choices"][0]["message"]["content"]
            return reply.headers.get("x-aria-served-by", "here"), answer
        args: dict[str, Any] = {"body": body, "peer_id": peer}
        items = list(NodeClient.require(self.a.paths).stream("infer", **args))
        answer = json.loads(items[0]["data"])["choices"][0]["message"]["content"]
        return items[0]["peer"], answer

    def seen_by_a(self, peer: str) -> dict[str, Any]:
        view = self.a.peer(peer)
        assert view is not None, f"A does not know {peer}"
        return view


def _home(root: Path, name: str, model: Path, *, consent: dict[str, Any]) -> Path:
    home = root / name
    home.mkdir()
    store = ModelStore(AriaPaths(home), load_catalog(), load_denylist())
    store.import_file(model, model_id=MODEL)
    update_settings(AriaPaths(home), {"consent": consent, "ledger": {"spot_check_rate": 1.0}})
    return home


@pytest.fixture(scope="module")
def trio_(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    root = tmp_path_factory.mktemp("work")
    model = write_llama_gguf(root / "tiny.gguf", n_ctx=1024)
    a_home = _home(root, "a", model, consent={"use_peers": True})
    b_home = _home(root, "b", model, consent={"share_inference": True})
    c_home = _home(root, "c", model, consent={"share_inference": True})
    assert aria_cli(a_home, "node", "consent", "set", "use.min_reputation", "0.2").returncode == 0
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    stoppers: list[NodeProc | Api] = []
    try:
        a = start_node(a_home, *common)
        stoppers.append(a)
        boot = a.status()["listen_addrs"][0]  # type: ignore[index]
        b = start_node(b_home, *common, "--bootstrap", boot)
        stoppers.append(b)
        c = start_node(c_home, *common, "--bootstrap", boot)
        stoppers.append(c)
        apis = [
            start_api(a_home),
            start_api(b_home),
            start_api(c_home, extra_env={CHEAT_ENV: "0.5"}),
        ]
        stoppers += apis
        b_id, c_id = b.status()["peer_id"], c.status()["peer_id"]  # type: ignore[index]

        def both_found() -> bool:
            found = a.query("find", MODEL) or []
            return {p["peer_id"] for p in found} == {b_id, c_id}

        wait_for(both_found, 90, "A to find the model on B and C", every_s=2)
        yield Trio(a, b, c, apis, b_id, c_id)
    finally:
        for item in reversed(stoppers):
            item.stop()


def _checks(trio: Trio, peer: str) -> tuple[int, int, float]:
    view = trio.seen_by_a(peer)
    return view["checks_passed"], view["checks_failed"], view["reputation"]


def test_a_cheating_peer_is_caught_and_no_longer_chosen(trio_: Trio) -> None:
    assert "WARNING" in (trio_.c.home / "api.log").read_text().upper()  # the switch is loud
    caught_after = None
    for number in range(1, CATCH_WITHIN + 1):
        served_by, _ = trio_.infer(f"Tell me about the number {number}.", peer=trio_.c_id)
        assert served_by == trio_.c_id
        done = number

        def checked(done: int = done) -> bool:
            passed, failed, _ = _checks(trio_, trio_.c_id)
            return passed + failed >= done

        wait_for(checked, 60, f"A to re-execute C's answer {number}")
        passed, failed, reputation = _checks(trio_, trio_.c_id)
        if failed and caught_after is None:
            caught_after = number
        if reputation < MIN_REPUTATION:
            break
    assert caught_after is not None, f"C was not caught within {CATCH_WITHIN} requests"
    passed, failed, reputation = _checks(trio_, trio_.c_id)
    assert reputation < MIN_REPUTATION, (passed, failed, reputation)
    # A's placement decision (its ranking) now only ever chooses B ...
    for number in range(10):
        served_by, _ = trio_.infer(f"Which peer answers question {number}?")
        assert served_by == trio_.b_id
    # ... and A refuses to send C a prompt even when asked to by name
    with pytest.raises(ConsentRefused, match="low_reputation|reputation"):
        trio_.infer("Hello", peer=trio_.c_id)
    # A's ledger holds the evidence
    a_paths = trio_.a.paths
    with Ledger.open(a_paths.ledger, signer=load_identity(a_paths).peer_id) as ledger:
        checks = [e.decoded()["body"] for e in ledger.entries(kind="spotcheck", peer=trio_.c_id)]
    assert {c["verdict"] for c in checks} >= {"mismatch"}
    assert all(c.get("first_difference") is not None for c in checks if c["verdict"] == "mismatch")


def test_an_honest_peer_is_never_flagged_across_200_checked_answers(trio_: Trio) -> None:
    passed_before, failed_before, _ = _checks(trio_, trio_.b_id)
    for number in range(HONEST_CHECKS):
        served_by, _ = trio_.infer(f"Question {number}: what comes after {number}?", trio_.b_id)
        assert served_by == trio_.b_id
        time.sleep(PACE_S)

    def all_checked() -> bool:
        passed, failed, _ = _checks(trio_, trio_.b_id)
        return passed + failed >= passed_before + failed_before + HONEST_CHECKS

    wait_for(all_checked, 300, "A to re-execute B's 200 answers", every_s=2)
    passed, failed, reputation = _checks(trio_, trio_.b_id)
    assert failed == failed_before == 0, "an honest peer was flagged"
    assert passed - passed_before >= HONEST_CHECKS and reputation > 0.9


def test_every_ledger_verifies_with_cross_signed_receipts(trio_: Trio) -> None:
    for node in (trio_.a, trio_.b, trio_.c):
        result = aria_cli(node.home, "ledger", "verify", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["ok"] is True
    a_paths, b_paths = trio_.a.paths, trio_.b.paths
    with Ledger.open(a_paths.ledger, signer=load_identity(a_paths).peer_id) as ledger:
        consumed = [
            e.decoded()["body"] for e in ledger.entries(kind="inference", peer=trio_.b_id, limit=50)
        ]
    assert consumed and all(r["role"] == "consumed" for r in consumed)
    assert all("work" in r and "ack_sig" in r for r in consumed)  # both signatures kept
    assert all(r["energy"]["source"] == "peer" for r in consumed)
    with Ledger.open(b_paths.ledger, signer=load_identity(b_paths).peer_id) as ledger:
        served = ledger.entries(kind="inference", peer=trio_.a.status()["peer_id"])  # type: ignore[index]
        countersigned = ledger.entries(kind="countersign")
    assert len(served) >= HONEST_CHECKS
    assert len(countersigned) >= len(served) - 2  # the newest may still be in flight
    energy = aria_cli(trio_.b.home, "ledger", "energy", "--json")
    totals = json.loads(energy.stdout)
    assert any(
        row["role"] == "served" and row["requests"] >= HONEST_CHECKS for row in totals["by_role"]
    )
