"""Two real node processes on loopback: bootstrap, handshake, signed adverts, find, clean stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths
from aria.convert.synthetic import write_llama_gguf
from aria.p2p.control import control_file
from aria.p2p.lifecycle import pid_file
from aria.store import ModelStore
from tests.p2p.procs import NodeProc, start_node, wait_for

pytestmark = pytest.mark.slow


def _install_models(home: Path, scratch: Path) -> str:
    """A shareable (Apache-2.0) model and a local-only (Llama 3) one; returns the shareable sha."""
    store = ModelStore(AriaPaths(home), load_catalog(), load_denylist())
    green = store.import_file(write_llama_gguf(scratch / "tiny.gguf", seed=1), model_id="tiny-p2p")
    yellow = write_llama_gguf(scratch / "local.gguf", seed=2, license="llama3")
    store.import_file(yellow, model_id="tiny-local", accept_license=True)
    return green.sha256


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[NodeProc, NodeProc, str]]:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    home_b.mkdir()
    sha = _install_models(home_b, tmp_path)
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    a = start_node(home_a, *common)
    nodes = [a]
    try:
        bootstrap = a.status()["listen_addrs"][0]  # type: ignore[index]
        b = start_node(home_b, *common, "--bootstrap", bootstrap)
        nodes.append(b)
        yield a, b, sha
    finally:
        for node in nodes:
            node.stop()


def test_two_nodes_exchange_verified_adverts_and_find_models(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b, sha = two_nodes
    a_id, b_id = a.status()["peer_id"], b.status()["peer_id"]

    def described(node: NodeProc, peer_id: str):  # type: ignore[no-untyped-def]
        view = node.peer(peer_id)
        return view if view and view["verified"] and view["advert_expires_at"] else None

    seen_by_a = wait_for(lambda: described(a, b_id), 60, "A to verify B and fetch its advert")
    seen_by_b = wait_for(lambda: described(b, a_id), 60, "B to verify A and fetch its advert")
    assert seen_by_a["connection"] == "direct" and seen_by_b["connection"] == "direct"
    assert [m["id"] for m in seen_by_a["models"]] == ["tiny-p2p"]  # the Llama-3 model stays local
    assert seen_by_a["hardware"]["cpu_cores"] >= 1 and seen_by_a["rtt_ms"] is not None

    # B's provider records reach the DHT with its first publish that finds A in its routing
    # table (a publish racing the bootstrap dial goes nowhere; the next one is seconds later).
    providers = wait_for(lambda: a.query("find", "tiny-p2p"), 60, "A to find B's tiny-p2p")
    assert [(p["peer_id"], p["model"]["sha256"]) for p in providers] == [(b_id, sha)]
    assert a.query("find", "tiny-local") == []
    status = a.status()
    assert status["aria_peers"] == 1 and status["reachability"] in {"public", "unknown"}

    # One node per ARIA home: a second start on A's home is refused in one line.
    second = a.cli("node", "start", "--port", "0", "--host", "127.0.0.1", "--no-mdns")
    assert second.returncode == 6 and "already running" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1

    # B stops cleanly: tombstone published, files removed, process gone.
    stopped = b.cli("node", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert b.proc.wait(timeout=10) == 0
    assert not pid_file(b.paths).exists() and not control_file(b.paths).exists()
    wait_for(lambda: a.query("find", "tiny-p2p") == [], 30, "A to drop B's withdrawn advert")

    # A stops on SIGTERM just as cleanly.
    assert a.stop() == 0
    assert not pid_file(a.paths).exists() and not control_file(a.paths).exists()
