"""Each clause of a serving node's consent contract, changed live with the CLI, refuses what
it forbids and admits what it allows: real nodes, a real API, real requests.

B serves a tiny model and changes one clause at a time (``aria node consent set``, which
signs the change and sends it to B's running node); A asks B for inference right after.
A's own ``use`` clauses decide what leaves A.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths, update_settings
from aria.convert.synthetic import write_llama_gguf
from aria.errors import AriaError
from aria.p2p.control import NodeClient
from aria.store import ModelStore
from tests.p2p.procs import Api, NodeProc, aria_cli, start_api, start_node, wait_for

pytestmark = pytest.mark.slow

MODEL = "tiny-consent"


@dataclass
class Pair:
    a: NodeProc
    b: NodeProc
    api_b: Api
    a_id: str
    b_id: str

    def ask(self, **body: Any) -> str | None:
        """A asks B; None when B answered, else the error's text (with its reason code)."""
        request = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        try:
            items = list(
                NodeClient.require(self.a.paths).stream(
                    "infer", body={**request, **body}, peer_id=self.b_id
                )
            )
        except AriaError as exc:
            return exc.message
        assert items and items[0]["peer"] == self.b_id
        return None

    def set(self, node: NodeProc, clause: str, value: str) -> None:
        result = aria_cli(node.home, "node", "consent", "set", clause, value)
        assert result.returncode == 0, result.stderr
        assert "the running node applied it" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("consent")
    model = write_llama_gguf(root / "tiny.gguf", n_ctx=512)
    homes = {name: root / name for name in "ab"}
    for home in homes.values():
        home.mkdir()
    ModelStore(AriaPaths(homes["b"]), load_catalog(), load_denylist()).import_file(
        model, model_id=MODEL
    )
    update_settings(AriaPaths(homes["a"]), {"consent": {"use_peers": True}})
    update_settings(AriaPaths(homes["b"]), {"consent": {"share_inference": True}})
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    started: list[NodeProc | Api] = []
    try:
        a = start_node(homes["a"], *common)
        started.append(a)
        boot = a.status()["listen_addrs"][0]  # type: ignore[index]
        b = start_node(homes["b"], *common, "--bootstrap", boot)
        started.append(b)
        api_b = start_api(homes["b"])
        started.append(api_b)
        a_id, b_id = a.status()["peer_id"], b.status()["peer_id"]  # type: ignore[index]
        wait_for(lambda: (a.peer(b_id) or {}).get("verified"), 60, "A to verify B")
        yield Pair(a, b, api_b, a_id, b_id)
    finally:
        for item in reversed(started):
            item.stop()


def _window(now: datetime, *, inside: bool) -> str:
    start = now + (timedelta(minutes=-30) if inside else timedelta(hours=2))
    end = start + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


# clause, value that forbids (with the reason expected), value that allows, request fields
CLAUSES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("lend.tasks", "split", "task_not_allowed", "inference", {}),
    ("lend.deny", "{a}", "peer_denied", "", {}),
    (
        "lend.peers",
        "12D3KooWsomeoneElse1111111111111111111111111111111",
        "peer_not_allowed",
        "{a}",
        {},
    ),
    ("lend.min_reputation", "0.6", "low_reputation", "0.5", {}),
    ("lend.models", "another-model", "model_not_allowed", MODEL, {}),
    ("lend.hours", "{outside}", "outside_hours", "{inside}", {}),
    ("lend.max_jobs", "0", "busy", "1", {}),
    ("lend.max_tokens", "3", "too_many_tokens", "4", {"max_tokens": 4}),
]


@pytest.mark.parametrize(
    ("clause", "forbid", "reason", "allow", "fields"), CLAUSES, ids=[c[0] for c in CLAUSES]
)
def test_each_lending_clause_live(
    pair: Pair, clause: str, forbid: str, reason: str, allow: str, fields: dict[str, Any]
) -> None:
    now = datetime.now()
    values = {
        "a": pair.a_id,
        "outside": _window(now, inside=False),
        "inside": _window(now, inside=True),
    }
    assert pair.ask(**fields) is None  # admitted before the change
    pair.set(pair.b, clause, forbid.format(**values))
    refused = pair.ask(**fields)
    assert refused is not None and reason in refused, refused
    pair.set(pair.b, clause, allow.format(**values))
    assert pair.ask(**fields) is None  # admitted again, at once


def test_the_refusal_and_the_admission_are_on_the_record(pair: Pair) -> None:
    """B's receipts name the contract hash they ran under, the current one."""
    import json

    shown = json.loads(aria_cli(pair.b.home, "node", "consent", "show", "--json").stdout)
    assert pair.ask() is None
    listed = json.loads(
        aria_cli(pair.b.home, "ledger", "list", "--kind", "inference", "--json").stdout
    )
    newest = listed["entries"][0]
    entry = json.loads(aria_cli(pair.b.home, "ledger", "show", str(newest["seq"]), "--json").stdout)
    body = entry["entry"]["body"]
    assert body["role"] == "served" and body["peer"] == pair.a_id
    assert body["contract"] == shown["sha256"]
    # and the advert carries the hash
    pair.a.cli("network", "ping", pair.b_id, "--json")
    view = pair.a.peer(pair.b_id)
    assert view is not None and view["contract"] == shown["sha256"]


def test_the_requesters_use_clauses_decide_what_leaves_it(pair: Pair) -> None:
    pair.set(pair.a, "use.prompts_may_leave", "false")
    refused = pair.ask()
    assert refused is not None and "keeps prompts on this machine" in refused
    pair.set(pair.a, "use.prompts_may_leave", "true")
    assert pair.ask() is None
    pair.set(pair.a, "use.min_reputation", "0.6")  # B has never been checked: 0.5
    refused = pair.ask()
    assert refused is not None and "reputation" in refused
    pair.set(pair.a, "use.min_reputation", "0.2")
    assert pair.ask() is None


def test_a_hand_edited_contract_lends_nothing(pair: Pair, tmp_path: Path) -> None:
    import re

    path = pair.b.home / "node" / "consent.toml"
    original = path.read_text()
    path.write_text(re.sub(r"max_jobs = \d+", "max_jobs = 7", original))  # not signed
    try:
        refused = pair.ask()  # the node re-reads the changed file and refuses it
        assert refused is not None and "task_not_allowed" in refused
    finally:
        fixed = tmp_path / "fixed.toml"
        fixed.write_text(original)
        result = aria_cli(pair.b.home, "node", "consent", "edit", "--file", str(fixed))
        assert result.returncode == 0, result.stderr
    assert pair.ask() is None
